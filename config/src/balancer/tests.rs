#![allow(clippy::unwrap_used)]

use crate::Config;

fn yaml(balancer: &str) -> String {
    format!(
        "listeners: {{ data: {{ address: '127.0.0.1:0' }}, admin: {{ address: '127.0.0.1:0' }} }}\n\
         backends: [{{ name: b, endpoints: [{{url: 'http://127.0.0.1:1'}}], balancer: {balancer} }}]\n\
         models: [{{ name: m, backend: b }}]\n"
    )
}

#[test]
fn model_aware_implies_engine_state_and_defaults_hold() {
    let cfg = Config::from_yaml(&yaml(
        "{ policy: model_aware, prefix_affinity: {}, weights: { queue: 2 } }",
    ))
    .unwrap();
    let b = cfg.backends[0].balancer.as_ref().unwrap();
    assert_eq!(b.policy, crate::Policy::ModelAware);
    assert_eq!(b.weights.queue, 2.0);
    assert_eq!(b.weights.kv, 1.0);
    assert_eq!(b.prefix_affinity.as_ref().unwrap().block_bytes, 256);
    let scrape = b.scrape().unwrap();
    assert_eq!(scrape.path, "/metrics");
    assert_eq!(scrape.interval.get().as_millis(), 100);
    let p2c = Config::from_yaml(&yaml("{ policy: p2c }")).unwrap();
    assert!(p2c.backends[0]
        .balancer
        .as_ref()
        .unwrap()
        .scrape()
        .is_none());
}

#[test]
fn bad_values_are_reported_with_their_path() {
    let err = Config::from_yaml(&yaml(
        "{ kv_threshold: 1.5, candidates: 0, prefix_affinity: { load_factor: 0.5 }, \
         engine_state: { path: metrics, names: { queue: 'a b', running: r, kv_usage: k } } }",
    ))
    .unwrap_err()
    .to_string();
    for want in [
        "backends[0].balancer.kv_threshold: 1.5 is not in (0, 1]",
        "backends[0].balancer.candidates",
        "backends[0].balancer.prefix_affinity.load_factor",
        "backends[0].balancer.engine_state.path",
        "backends[0].balancer.engine_state.names.queue",
    ] {
        assert!(err.contains(want), "{want} not in {err}");
    }
    let unknown = Config::from_yaml(&yaml("{ policy: least_connections }"))
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("least_connections"), "{unknown}");
    let rr = Config::from_yaml(&yaml("{ policy: round_robin }")).unwrap();
    assert_eq!(
        rr.backends[0].balancer.as_ref().unwrap().policy,
        crate::Policy::RoundRobin
    );
}
