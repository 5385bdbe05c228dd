//! The gateway-wide retry budget: retries beyond `min_per_second` x 10 s (plus `ratio` of the
//! requests) in the last ten seconds are refused, and the budget refills as the window moves.

use std::time::Duration;

use http::StatusCode;
use infergate_loadtest::sim::SimConfig;

use crate::common::*;

#[tokio::test(start_paused = true)]
async fn retries_stop_when_the_budget_is_spent_and_resume_as_the_window_moves() {
    let _clock = ManualClock::hold();
    let failing = || {
        sim_with(SimConfig {
            faults: vec!["status=503".parse().unwrap()],
            ..SimConfig::default()
        })
    };
    let (a, b) = (failing().await, failing().await);
    // No share of requests, one retry a second: 10 retries in any ten seconds.
    let top = "retry_budget: { ratio: 0.0, min_per_second: 1 }";
    let extra = "    retry: { max_attempts: 2 }\n    outlier: { consecutive_failures: 0 }\n";
    let gw = gateway(&config(&[url(&a), url(&b)], extra, top)).await;
    let admin = gw.admin_addr;
    let upstream = || a.requests_received() + b.requests_received();
    for n in 1..=15u64 {
        let r = post(gw.data_addr, "/v1/chat/completions", &chat_stream(2)).await;
        // The last upstream answer is passed through.
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        // Two attempts while the budget lasts, one after.
        assert_eq!(
            upstream(),
            n.min(10) * 2 + n.saturating_sub(10),
            "request {n}"
        );
    }
    let m = metrics(admin).await;
    assert_eq!(
        metric_sum(&m, "infergate_retries_total", &[("result", "retried")]),
        10.0
    );
    assert_eq!(
        metric_sum(&m, "infergate_retries_total", &[("result", "budget")]),
        5.0
    );

    // Nine seconds on, the window still holds the ten retries.
    advance(Duration::from_secs(9)).await;
    let before = upstream();
    post(gw.data_addr, "/v1/chat/completions", &chat_stream(2)).await;
    assert_eq!(upstream(), before + 1, "retried with the budget spent");
    // Past ten seconds they have left the window: a retry is allowed again.
    advance(Duration::from_secs(2)).await;
    let before = upstream();
    post(gw.data_addr, "/v1/chat/completions", &chat_stream(2)).await;
    assert_eq!(
        upstream(),
        before + 2,
        "not retried with the budget refilled"
    );
    let m = metrics(admin).await;
    assert_eq!(
        metric_sum(&m, "infergate_retries_total", &[("result", "retried")]),
        11.0
    );
    assert_eq!(
        metric_sum(&m, "infergate_retries_total", &[("result", "budget")]),
        6.0
    );
}
