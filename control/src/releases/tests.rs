#![allow(clippy::unwrap_used)]

use http::{Method, StatusCode};

use super::*;

const SPEC: &str = "\
name: demo-v2
model: demo
stable: stable
canary: canary
steps: [10, 100]
step_interval: 1s
gates: { ttft_p95_ratio: 1.5, tpot_p95_ratio: 1.5, error_rate_delta: 0.02, gpu_healthy: false }
source: { gateways: [\"http://127.0.0.1:1\"] }
";

fn releases(backend: Backend) -> (Arc<Releases>, Feed, prometheus::Registry) {
    let feed = Feed::new("node-a");
    let registry = prometheus::Registry::new();
    let metrics = ReleaseMetrics::new(&registry).unwrap();
    (
        Releases::new(backend, feed.clone(), metrics, None),
        feed,
        registry,
    )
}

fn body(a: &api::Answer) -> serde_json::Value {
    serde_json::from_slice(&a.body).unwrap()
}

#[test]
fn the_api_creates_lists_ends_and_deletes_releases() {
    let (r, feed, registry) = releases(Backend::Memory);
    let a = api::handle(&r, &Method::POST, "/v1/releases", SPEC.as_bytes());
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(body(&a)["state"], "running");
    assert_eq!(body(&a)["canary_weight"], 10);
    let doc = feed.current();
    assert_eq!(doc.releases[0].weights["canary"], 10);
    assert_eq!(doc.releases[0].weights["stable"], 90);
    // The same name again, and another release of the running model: conflicts.
    let a = api::handle(&r, &Method::POST, "/v1/releases", SPEC.as_bytes());
    assert_eq!(a.status, StatusCode::CONFLICT);
    let other = SPEC.replace("name: demo-v2", "name: demo-v3");
    let a = api::handle(&r, &Method::POST, "/v1/releases", other.as_bytes());
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(body(&a)["error"]
        .as_str()
        .unwrap()
        .contains("running on model"));
    let a = api::handle(&r, &Method::POST, "/v1/releases", b"name: x\n");
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(body(&a)["error"]
        .as_str()
        .unwrap()
        .contains("missing field"));
    let a = api::handle(&r, &Method::GET, "/v1/releases", b"");
    assert_eq!(body(&a)["releases"].as_array().unwrap().len(), 1);
    let a = api::handle(&r, &Method::POST, "/v1/releases/demo-v2/promote", b"");
    assert_eq!(
        (a.status, body(&a)["state"].as_str()),
        (StatusCode::OK, Some("promoted"))
    );
    assert!(body(&a)["final_split"]
        .as_str()
        .unwrap()
        .contains("weight: 100"));
    assert_eq!(feed.current().releases[0].weights["canary"], 100);
    let a = api::handle(&r, &Method::POST, "/v1/releases/demo-v2/abort", b"");
    assert_eq!(a.status, StatusCode::CONFLICT);
    let metrics = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    assert!(
        metrics
            .contains(r#"infergate_control_release_state{release="demo-v2",state="promoted"} 1"#),
        "{metrics}"
    );
    // A new release of the model takes over the feed from the ended one.
    let a = api::handle(&r, &Method::POST, "/v1/releases", other.as_bytes());
    assert_eq!(a.status, StatusCode::CREATED);
    let names: Vec<String> = feed
        .current()
        .releases
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(names, vec!["demo-v3".to_owned()]);
    let a = api::handle(&r, &Method::GET, "/v1/releases/demo-v2", b"");
    assert_eq!(body(&a)["superseded_by"], "demo-v3");
    let a = api::handle(&r, &Method::DELETE, "/v1/releases/demo-v3", b"");
    assert_eq!(a.status, StatusCode::OK);
    assert!(feed.current().releases.is_empty());
    let a = api::handle(&r, &Method::GET, "/v1/releases/demo-v3", b"");
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = api::handle(&r, &Method::PUT, "/v1/releases/demo-v2", b"");
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[test]
fn saved_releases_are_resumed_and_published_at_start() {
    let dir =
        std::env::temp_dir().join(format!("infergate-control-releases-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (r, _, _) = releases(Backend::File(Store::open(&dir).unwrap()));
    r.create(SPEC).unwrap();
    drop(r);
    let (again, feed, _) = releases(Backend::File(Store::open(&dir).unwrap()));
    let got = again.get("demo-v2").unwrap();
    assert_eq!(
        (got.record.state.as_str(), got.state.canary_weight),
        ("running", 10)
    );
    assert_eq!(feed.current().releases[0].generation, got.state.generation);
    again.delete("demo-v2").unwrap();
    let (empty, _, _) = releases(Backend::File(Store::open(&dir).unwrap()));
    assert!(empty.list().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
