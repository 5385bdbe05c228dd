//! A real Prometheus as a release's metrics source gives the same verdicts as reading the
//! gateways directly. Needs the `prometheus` binary (Debian package `prometheus`, or
//! `PROMETHEUS_BIN`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "release_harness.rs"]
mod harness;

use std::time::Duration;

use harness::*;

/// Each step's verdict and the failed gates, as `run` printed them.
fn verdicts(r: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let failed = s["gates"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|g| g["pass"] == false)
                .map(|g| g["name"].as_str().unwrap().to_owned())
                .collect();
            (s["verdict"].as_str().unwrap().to_owned(), failed)
        })
        .collect()
}

/// Runs the same release with the direct source, then with Prometheus; returns both.
async fn both(s: &Stack, steps: &str) -> (serde_json::Value, serde_json::Value) {
    let load = Load::start(s.gateway.data, 8);
    let (_prom, url) = s.prometheus().await;
    let direct = s.spec("direct", steps, "");
    let (code_d, out_d) = s
        .cli(
            &["run", "--spec", direct.to_str().unwrap()],
            Duration::from_secs(90),
        )
        .await;
    let prom = s.spec_with_source(
        "prom",
        steps,
        "",
        &format!(
            "source: {{ gateways: [\"http://{}\"], prometheus: {{ url: \"{url}\" }} }}",
            s.gateway.admin
        ),
    );
    let (code_p, out_p) = s
        .cli(
            &["run", "--spec", prom.to_str().unwrap()],
            Duration::from_secs(90),
        )
        .await;
    load.stop().await;
    assert_eq!(code_d, code_p, "direct:\n{out_d}\nprometheus:\n{out_p}");
    (s.release("direct").await, s.release("prom").await)
}

#[tokio::test]
async fn prometheus_and_direct_reading_promote_a_good_canary_alike() {
    let s = stack(&[], "devices: [{}, {}]\n").await;
    let (d, p) = both(&s, "[20, 100]").await;
    assert_eq!(d["state"], "promoted", "{d}");
    assert_eq!(verdicts(&d), verdicts(&p));
    // Both sources saw the canary's traffic.
    assert!(
        p["steps"][0]["canary"]["requests"].as_u64().unwrap() >= 20,
        "{p}"
    );
}

#[tokio::test]
async fn prometheus_and_direct_reading_roll_back_a_slow_canary_alike() {
    let s = stack(&["--ttft-ms", "80"], "devices: [{}, {}]\n").await;
    let (d, p) = both(&s, "[25, 100]").await;
    assert_eq!(d["state"], "rolled_back", "{d}");
    assert_eq!(verdicts(&d), verdicts(&p));
    assert_eq!(
        verdicts(&p),
        vec![("fail".to_owned(), vec!["ttft_p95".to_owned()])]
    );
    let ratio = |r: &serde_json::Value| {
        r["steps"][0]["canary"]["ttft_s"]["p95"].as_f64().unwrap()
            / r["steps"][0]["stable"]["ttft_s"]["p95"].as_f64().unwrap()
    };
    // The same figures within the histograms' resolution.
    assert!(
        (ratio(&d) - ratio(&p)).abs() < 0.5,
        "{} vs {}",
        ratio(&d),
        ratio(&p)
    );
}
