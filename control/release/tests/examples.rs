//! The release example in `config/examples/release/`: its spec reads with `ReleaseSpec::parse`
//! and has the values the example's docs and outside checks rely on, and it agrees with the
//! example's gateway and control configs (the gateway's admin listener, the model and its
//! variants, control's address).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use infergate_release::spec::{OnRollback, ReleaseSpec};
use serde_yaml_ng::Value;

fn example(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../config/examples/release")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn yaml(file: &str) -> Value {
    serde_yaml_ng::from_str(&example(file)).unwrap()
}

#[test]
fn the_example_spec_reads_with_its_documented_values() {
    let spec = ReleaseSpec::parse(&example("release.yaml")).unwrap();
    assert_eq!(spec.name, "demo-canary");
    assert_eq!(spec.model, "demo");
    assert_eq!(spec.stable, "stable");
    assert_eq!(spec.canary, "canary");
    assert_eq!(spec.steps, vec![10, 50, 100]);
    assert_eq!(spec.step_interval.get(), Duration::from_secs(3));
    assert_eq!(spec.min_requests, 20);
    assert_eq!(spec.gates.ttft_p95_ratio, 1.5);
    assert_eq!(spec.gates.tpot_p95_ratio, 1.5);
    assert_eq!(spec.gates.error_rate_delta, 0.02);
    assert!(spec.gates.gpu_healthy, "the GPU gate is on by default");
    assert_eq!(spec.gates.slo, None);
    assert_eq!(spec.warmup, None);
    assert_eq!(spec.on_rollback, OnRollback::Stay);
    assert_eq!(spec.source.gateways, vec!["http://127.0.0.1:9190"]);
    assert_eq!(spec.source.prometheus, None);
}

#[test]
fn the_example_spec_matches_the_example_gateway() {
    let spec = ReleaseSpec::parse(&example("release.yaml")).unwrap();
    let gw = yaml("gateway.yaml");
    assert_eq!(gw["listeners"]["data"]["address"], "127.0.0.1:9100");
    let admin = gw["listeners"]["admin"]["address"].as_str().unwrap();
    assert_eq!(spec.source.gateways, vec![format!("http://{admin}")]);
    assert_eq!(
        gw["health_feeds"][0]["url"], "http://127.0.0.1:9200/v1/health",
        "the gateway follows the control that runs the release"
    );
    let models = gw["models"].as_sequence().unwrap();
    let model = models
        .iter()
        .find(|m| m["name"] == spec.model.as_str())
        .unwrap();
    let variants: Vec<&str> = model["variants"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(variants, vec![spec.stable.as_str(), spec.canary.as_str()]);
    // Before the release the stable variant has all the traffic, sticky on x-user-id.
    let route = &model["routes"][0];
    assert_eq!(route["split"][0]["variant"], spec.stable.as_str());
    assert_eq!(route["split"][0]["weight"], 100);
    assert_eq!(route["split"][1]["variant"], spec.canary.as_str());
    assert_eq!(route["split"][1]["weight"], 0);
    assert_eq!(route["sticky"]["header"], "x-user-id");
    let urls: Vec<&str> = gw["backends"][0]["endpoints"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| e["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls, vec!["http://127.0.0.1:9101", "http://127.0.0.1:9102"]);
}

#[test]
fn the_example_control_listens_where_the_cli_looks_and_saves_releases() {
    let control = yaml("control.yaml");
    assert_eq!(control["listen"], "127.0.0.1:9200");
    let dir = control["release"]["state_dir"].as_str().unwrap();
    assert!(
        dir.contains("${INFERGATE_RELEASE_STATE:-/"),
        "the state dir can be moved with an environment variable and has a writable default: {dir}"
    );
}
