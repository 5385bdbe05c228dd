#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::*;

pub(crate) const SPEC: &str = "\
name: demo-v2
model: demo
stable: stable
canary: canary
steps: [10, 50, 100]
step_interval: 3s
min_requests: 20
gates: { ttft_p95_ratio: 1.5, tpot_p95_ratio: 1.5, error_rate_delta: 0.02 }
source: { gateways: [\"http://127.0.0.1:9190\"] }
";

#[test]
fn a_full_spec_is_read_with_defaults() {
    let s = ReleaseSpec::parse(SPEC).unwrap();
    assert_eq!(s.steps, vec![10, 50, 100]);
    assert_eq!(s.step_interval.get(), Duration::from_secs(3));
    assert!(s.gates.gpu_healthy);
    assert_eq!(s.on_rollback, OnRollback::Stay);
    assert_eq!(s.source.timeout.get(), Duration::from_secs(2));
    assert_eq!(s.canary_weight(1), 50);
    let s = ReleaseSpec::parse(&format!(
        "{SPEC}on_rollback: {{ action: retry, pause: 5m }}\nwarmup: {{ required: true }}\n\
         gates_extra_is_not_here: 1\n"
    ));
    assert!(s
        .unwrap_err()
        .to_string()
        .contains("gates_extra_is_not_here"));
    let s = ReleaseSpec::parse(&format!(
        "{SPEC}on_rollback: {{ action: retry, pause: 5m }}\nwarmup: {{ required: true }}\n"
    ))
    .unwrap();
    assert_eq!(
        s.on_rollback,
        OnRollback::Retry {
            pause: Dur::secs(300),
            max_retries: 3
        }
    );
    assert_eq!(s.warmup.unwrap().timeout.get(), Duration::from_secs(600));
}

#[test]
fn json_is_read_too() {
    let s = ReleaseSpec::parse(SPEC).unwrap();
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(ReleaseSpec::parse(&json).unwrap(), s);
}

#[test]
fn unknown_and_mistyped_fields_name_their_path() {
    let err = ReleaseSpec::parse(&SPEC.replace("tpot_p95_ratio", "tpot_ratio"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("gates") && err.contains("tpot_ratio"), "{err}");
    let err = ReleaseSpec::parse(&SPEC.replace("3s", "soon"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("step_interval") && err.contains("soon"),
        "{err}"
    );
    let err = ReleaseSpec::parse(&format!("{SPEC}on_rollback: {{ action: wait }}\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("on_rollback") && err.contains("wait"), "{err}");
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let bad = SPEC
        .replace("name: demo-v2", "name: \"demo v2\"")
        .replace("canary: canary", "canary: stable")
        .replace("[10, 50, 100]", "[0, 50, 40]")
        .replace("3s", "10ms")
        .replace("ttft_p95_ratio: 1.5", "ttft_p95_ratio: 0")
        .replace("error_rate_delta: 0.02", "error_rate_delta: 2")
        .replace("http://127.0.0.1:9190", "127.0.0.1:9190");
    let bad = format!("{bad}warmup: {{ required: true, timeout: 0s }}\n");
    let err = ReleaseSpec::parse(&bad).unwrap_err();
    for want in [
        "name: \"demo v2\": use letters",
        "canary: \"stable\": must differ from stable",
        "steps[0]: 0: must be between 1 and 100",
        "steps[2]: 40: must be above the step before (50)",
        "steps[2]: 40: the last step must be 100",
        "step_interval: 10ms: must be at least 100ms",
        "gates.ttft_p95_ratio: 0: must be > 0",
        "gates.error_rate_delta: 2: must be between 0 and 1",
        "source.gateways[0]: \"127.0.0.1:9190\": must be an http:// URL",
        "warmup.timeout: 0s: must be positive",
    ] {
        assert!(
            err.0.iter().any(|e| e.starts_with(want)),
            "{want} not in {err}"
        );
    }
    assert_eq!(err.0.len(), 10, "{err}");
}

#[test]
fn gpu_health_and_warmup_need_gateways() {
    let prom_only = SPEC.replace(
        "source: { gateways: [\"http://127.0.0.1:9190\"] }",
        "source: { prometheus: { url: \"http://127.0.0.1:9090\" } }",
    );
    let err = ReleaseSpec::parse(&prom_only).unwrap_err().to_string();
    assert!(
        err.contains("gates.gpu_healthy: needs source.gateways"),
        "{err}"
    );
    let ok = prom_only.replace(
        "error_rate_delta: 0.02",
        "error_rate_delta: 0.02, gpu_healthy: false",
    );
    assert!(ReleaseSpec::parse(&ok).is_ok());
    let err = ReleaseSpec::parse(&format!("{ok}warmup: {{ required: true }}\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("warmup.required: needs source.gateways"),
        "{err}"
    );
    let none = SPEC.replace("gateways: [\"http://127.0.0.1:9190\"]", "gateways: []");
    let err = ReleaseSpec::parse(&none).unwrap_err().to_string();
    assert!(err.contains("source: name the gateways"), "{err}");
}

#[test]
fn schema_names_the_fields() {
    let schema = json_schema().to_string();
    for field in [
        "step_interval",
        "ttft_p95_ratio",
        "on_rollback",
        "prometheus",
        "min_requests",
    ] {
        assert!(schema.contains(field), "{field}");
    }
}
