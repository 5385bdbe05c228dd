#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

//! The release example's gateway config (`config/examples/release/gateway.yaml`) loads and has
//! the shape that the release example, the demo and outside checks rely on.

use std::path::Path;

use infergate_config::Config;

fn example() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/release/gateway.yaml");
    Config::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn gateway_listens_on_the_quickstart_addresses_and_follows_control() {
    let cfg = example();
    assert_eq!(cfg.listeners.data.address, "127.0.0.1:9100");
    assert_eq!(cfg.listeners.admin.address, "127.0.0.1:9190");
    let feeds: Vec<&str> = cfg.health_feeds.iter().map(|f| f.url.as_str()).collect();
    assert_eq!(feeds, ["http://127.0.0.1:9200/v1/health"]);
}

#[test]
fn demo_starts_all_stable_and_sticky() {
    let cfg = example();
    let model = cfg.models.iter().find(|m| m.name == "demo").unwrap();
    let backend_urls = |variant: &str| -> Vec<String> {
        let v = model.variants.iter().find(|v| v.name == variant).unwrap();
        let b = cfg.backends.iter().find(|b| b.name == v.backend).unwrap();
        b.endpoints
            .iter()
            .filter(|e| {
                v.selector
                    .iter()
                    .all(|(k, want)| e.labels.get(k) == Some(want.as_str()))
            })
            .map(|e| e.url.clone())
            .collect()
    };
    assert_eq!(backend_urls("stable"), ["http://127.0.0.1:9101"]);
    assert_eq!(backend_urls("canary"), ["http://127.0.0.1:9102"]);
    assert_eq!(model.routes.len(), 1);
    let route = &model.routes[0];
    let split: Vec<(&str, u32)> = route
        .split
        .iter()
        .map(|s| (s.variant.as_str(), s.weight))
        .collect();
    assert_eq!(split, [("stable", 100), ("canary", 0)]);
    let sticky = route.sticky.as_ref().unwrap();
    assert_eq!(sticky.header.as_deref(), Some("x-user-id"));
}
