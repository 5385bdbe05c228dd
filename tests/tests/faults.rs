//! Injected upstream faults: what the client sees, what the metrics say, and that in-flight
//! counts return to zero. The faults come from `infergate-sim` (`--fault` and the
//! `x-sim-fault` header). The faults whose outcome depends on a timeout (hangs, stalls) and a
//! client that goes away are tested in process on a paused clock: gateway/tests/component.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use infergate_e2e::*;

const STREAM: &str = r#"{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":8,"stream":true,"stream_options":{"include_usage":true}}"#;

async fn assert_released(gw: &Gateway) {
    gw.wait_metric(
        "infergate_endpoint_in_flight",
        &[],
        0.0,
        Duration::from_secs(5),
    )
    .await;
}

async fn post_fault(addr: std::net::SocketAddr, fault: &str) -> Reply {
    post_with(
        addr,
        "/v1/chat/completions",
        STREAM,
        &[("x-sim-fault", fault)],
    )
    .await
}

#[tokio::test]
async fn refused_connection_is_502_or_retried() {
    let closed = closed_port_url();
    let gw = Gateway::start(&Gateway::config(std::slice::from_ref(&closed), "")).await;
    let r = post(gw.data, "/v1/chat/completions", STREAM).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.json()["error"]["code"], "upstream_connect_error");
    let m = gw.metrics().await;
    assert_eq!(
        metric_sum(
            &m,
            "infergate_requests_total",
            &[("outcome", "connect_error")]
        ),
        1.0
    );
    assert_eq!(
        metric_sum(
            &m,
            "infergate_upstream_failures_total",
            &[("reason", "connect")]
        ),
        1.0
    );
    assert_released(&gw).await;
}

#[tokio::test]
async fn status_503_is_passed_through_or_retried() {
    let bad = Sim::start(&["--ttft-ms", "1", "--itl-ms", "1", "--fault", "status=503"]).await;
    let good = Sim::start(&["--ttft-ms", "1", "--itl-ms", "1"]).await;
    // Only the failing endpoint: the client gets the upstream's 503 as it was sent.
    let gw = Gateway::start(&Gateway::config(&[bad.url()], "")).await;
    let r = post(gw.data, "/v1/chat/completions", STREAM).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.json()["error"].is_object());
    let m = gw.metrics().await;
    assert_eq!(
        metric_sum(
            &m,
            "infergate_requests_total",
            &[("outcome", "upstream_5xx")]
        ),
        1.0
    );
    assert_released(&gw).await;

    // With a healthy endpoint beside it, every request succeeds through retries.
    let extra = "    outlier: { consecutive_failures: 0 }\n";
    let gw = Gateway::start(&Gateway::config(&[bad.url(), good.url()], extra)).await;
    for _ in 0..20 {
        assert_eq!(stream_once(gw.data, STREAM).await, StreamResult::Complete);
    }
    let m = gw.metrics().await;
    assert_eq!(
        metric_sum(&m, "infergate_requests_total", &[("outcome", "success")]),
        20.0
    );
    let retried = metric_sum(&m, "infergate_retries_total", &[("result", "retried")]);
    assert!(retried >= 1.0, "{m}");
    assert_eq!(
        metric_sum(
            &m,
            "infergate_upstream_failures_total",
            &[("reason", "status_5xx")]
        ),
        retried
    );
    assert_released(&gw).await;
}

/// A fault after 3 token events: the client has a 200, gets the 3 tokens, then one SSE error
/// event with `code`; the request is counted with `outcome` and the endpoint's failure with
/// `reason`; in-flight counts return to zero.
async fn mid_stream_fault(
    fault: &str,
    backend_extra: &str,
    code: &str,
    outcome: &str,
    reason: &str,
) -> (Sim, Gateway) {
    let sim = Sim::start(&["--ttft-ms", "1", "--itl-ms", "5"]).await;
    let gw = Gateway::start(&Gateway::config(&[sim.url()], backend_extra)).await;
    let r = post_fault(gw.data, fault).await;
    assert_eq!(r.status, StatusCode::OK);
    let events = r.events();
    let tokens = events
        .iter()
        .filter(|(_, e)| e.contains("\"content\":\" "))
        .count();
    assert_eq!(tokens, 3, "{events:?}");
    let last: serde_json::Value = serde_json::from_str(&events.last().unwrap().1).unwrap();
    assert_eq!(last["error"]["code"], code);
    let m = gw.metrics().await;
    assert_eq!(
        metric_sum(&m, "infergate_requests_total", &[("outcome", outcome)]),
        1.0
    );
    assert_eq!(
        metric_sum(
            &m,
            "infergate_upstream_failures_total",
            &[("reason", reason)]
        ),
        1.0
    );
    assert_eq!(
        metric_sum(&m, "infergate_time_to_first_token_seconds_count", &[]),
        1.0
    );
    assert_released(&gw).await;
    (sim, gw)
}

#[tokio::test]
async fn dropped_connection_mid_stream_ends_with_an_error_event() {
    mid_stream_fault(
        "drop-after=3",
        "",
        "upstream_error",
        "upstream_error",
        "reset",
    )
    .await;
}

/// Waits until `n` streams have ended.
async fn streams_done(done: &AtomicU64, n: u64) {
    wait_until(
        &format!("{n} streams never ended"),
        Duration::from_secs(60),
        || async move { done.load(Ordering::Relaxed) >= n },
    )
    .await;
}

#[tokio::test]
async fn killing_one_of_three_upstreams_fails_no_request_before_its_first_byte() {
    let mut sims = Vec::new();
    for _ in 0..3 {
        sims.push(Sim::start(&["--ttft-ms", "20", "--itl-ms", "10"]).await);
    }
    let urls: Vec<String> = sims.iter().map(Sim::url).collect();
    let gw = Gateway::start(&Gateway::config(&urls, "")).await;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..24 {
        let (stop, done, addr) = (stop.clone(), done.clone(), gw.data);
        workers.push(tokio::spawn(async move {
            let mut results = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                results.push(stream_once(addr, STREAM).await);
                done.fetch_add(1, Ordering::Relaxed);
            }
            results
        }));
    }
    // Load on all three first, then on two: a number of streams ended in each phase.
    streams_done(&done, 120).await;
    let mut victim = sims.remove(1);
    victim.proc.child.start_kill().unwrap();
    victim.proc.child.wait().await.unwrap();
    let at_kill = done.load(Ordering::Relaxed);
    streams_done(&done, at_kill + 180).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let before_first_byte: Vec<_> = all
        .iter()
        .filter(|r| matches!(r, StreamResult::FailedBeforeFirstByte(_)))
        .collect();
    let cut = all
        .iter()
        .filter(|r| matches!(r, StreamResult::Cut(_)))
        .count();
    let m = gw.metrics().await;
    let retried = metric_sum(&m, "infergate_retries_total", &[("result", "retried")]);
    println!(
        "killed 1 of 3 upstreams under load: sent {}, complete {}, cut mid-stream {cut}, failed before first byte {}, retried {retried}",
        all.len(),
        all.iter().filter(|r| **r == StreamResult::Complete).count(),
        before_first_byte.len()
    );
    assert!(all.len() > 200, "load too light: {}", all.len());
    assert!(before_first_byte.is_empty(), "{before_first_byte:?}");
    assert!(cut <= 24, "more streams cut than were in flight: {cut}");
    assert_released(&gw).await;
}
