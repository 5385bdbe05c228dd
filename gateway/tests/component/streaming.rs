//! Streams pass through as the upstream sends them: each event leaves the gateway at the
//! instant the upstream produced it, and the TTFT and TPOT metrics are the upstream's.

use std::time::Duration;

use http::StatusCode;
use infergate_loadtest::sim::Simulator;

use crate::common::*;

async fn wait_received(sim: &Simulator, n: u64) {
    eventually("the requests never reached the upstream", || async {
        match sim.requests_received() {
            got if got >= n => Ok(()),
            got => Err(format!("{got} received")),
        }
    })
    .await;
}

/// Waits until each call has received `n` token events.
async fn wait_tokens(calls: &[Call], n: usize) {
    eventually(&format!("token {n} never arrived"), || async {
        let got: Vec<usize> = calls
            .iter()
            .map(|c| token_events(&c.events()).len())
            .collect();
        if got.iter().all(|g| *g >= n) {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
}

/// With the upstream's TTFT of 300 ms and 50 ms between tokens, moves the clock token by token
/// and checks that no token reaches the client early.
async fn drive_tokens(calls: &[Call], tokens: usize) {
    let count = || {
        calls
            .iter()
            .map(|c| token_events(&c.events()).len())
            .sum::<usize>()
    };
    advance(299 * MS).await;
    never("a token arrived before the upstream's TTFT", || async {
        count() > 0
    })
    .await;
    advance(MS).await;
    wait_tokens(calls, 1).await;
    for n in 2..=tokens {
        advance(49 * MS).await;
        never("a token arrived before the upstream sent it", || async {
            count() > (n - 1) * calls.len()
        })
        .await;
        advance(MS).await;
        wait_tokens(calls, n).await;
    }
}

#[tokio::test(start_paused = true)]
async fn events_arrive_when_the_upstream_sends_them() {
    let _clock = ManualClock::hold();
    let sim = sim(300, 50).await;
    let gw = gateway(&config(&[url(&sim)], "", "")).await;
    let call = Call::post(gw.data_addr, "/v1/chat/completions", &chat_stream(8), &[]);
    let sent = call.sent;
    wait_received(&sim, 1).await;
    drive_tokens(std::slice::from_ref(&call), 8).await;
    let r = call.reply().await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.contains_key("x-request-id"));
    let events = r.events();
    // role chunk, 8 token chunks, usage chunk, [DONE]
    assert_eq!(events.len(), 11, "{events:?}");
    assert_eq!(events[0].0 - sent, 300 * MS);
    let tokens = token_events(&events);
    let at: Vec<Duration> = tokens.iter().map(|t| *t - sent).collect();
    let want: Vec<Duration> = (0..8).map(|k| (300 + 50 * k) * MS).collect();
    assert_eq!(at, want);
    assert_eq!(events[10].1, "[DONE]");
}

#[tokio::test(start_paused = true)]
async fn ttft_and_tpot_metrics_match_the_upstream() {
    let _clock = ManualClock::hold();
    let sim = sim(300, 50).await;
    let gw = gateway(&config(&[url(&sim)], "", "")).await;
    let runs = 4;
    let calls: Vec<Call> = (0..runs)
        .map(|_| Call::post(gw.data_addr, "/v1/chat/completions", &chat_stream(8), &[]))
        .collect();
    wait_received(&sim, runs).await;
    drive_tokens(&calls, 8).await;
    for c in calls {
        assert_eq!(c.reply().await.status, StatusCode::OK);
    }
    let m = metrics(gw.admin_addr).await;
    let model = [("model", "demo")];
    let count = metric_sum(&m, "infergate_time_to_first_token_seconds_count", &model);
    assert_eq!(count, runs as f64, "{m}");
    let ttft = metric_sum(&m, "infergate_time_to_first_token_seconds_sum", &model) / count;
    let tpot = metric_sum(&m, "infergate_time_per_output_token_seconds_sum", &model)
        / metric_sum(&m, "infergate_time_per_output_token_seconds_count", &model);
    assert!((ttft - 0.300).abs() < 1e-6, "mean TTFT {ttft}");
    assert!((tpot - 0.050).abs() < 1e-6, "mean TPOT {tpot}");
    assert_eq!(
        metric_sum(&m, "infergate_output_tokens_total", &model),
        8.0 * runs as f64
    );
    assert_eq!(
        metric_sum(
            &m,
            "infergate_requests_total",
            &[("model", "demo"), ("outcome", "success")]
        ),
        runs as f64
    );
    assert!(metric_sum(&m, "infergate_input_tokens_total", &model) > 0.0);
    // Load is released when streams end.
    wait_metric(gw.admin_addr, "infergate_endpoint_in_flight", &[], 0.0).await;
}
