//! Upstream timeouts at their exact instants: first token (a 504, or a retry on another
//! endpoint), idle (an SSE error event after the tokens already sent) and total.

use std::time::Duration;

use http::StatusCode;
use infergate_loadtest::sim::SimConfig;
use tokio::time::Instant;

use crate::common::*;

/// The simulator has no request running: the gateway cancelled the upstream one.
async fn wait_sim_idle(sim: &infergate_loadtest::sim::Simulator) {
    eventually("the upstream request was not cancelled", || async {
        match sim.running() + sim.active_streams() {
            0 => Ok(()),
            n => Err(format!("{n} running")),
        }
    })
    .await;
}

async fn wait_received(sim: &infergate_loadtest::sim::Simulator, n: u64) {
    eventually("the request never reached the upstream", || async {
        match sim.requests_received() {
            got if got >= n => Ok(()),
            got => Err(format!("{got} received")),
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn hang_before_first_token_times_out_at_the_deadline() {
    let _clock = ManualClock::hold();
    let sim = sim(0, 0).await;
    let extra = "    timeouts: { first_token: 300ms }\n    retry: { max_attempts: 1 }\n";
    let gw = gateway(&config(&[url(&sim)], extra, "")).await;
    for (i, fault) in ["hang", "hang-body"].into_iter().enumerate() {
        let call = Call::post(
            gw.data_addr,
            "/v1/chat/completions",
            &chat_stream(8),
            &[("x-sim-fault", fault)],
        );
        // The request is at the upstream: the gateway's deadline is set.
        wait_received(&sim, i as u64 + 1).await;
        advance(299 * MS).await;
        never(
            &format!("{fault}: answered before the first-token deadline"),
            || async { call.finished() },
        )
        .await;
        advance(MS).await;
        let sent = call.sent;
        let r = call.reply().await;
        assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{fault}");
        assert_eq!(r.json()["error"]["code"], "upstream_first_token_timeout");
        assert_eq!(Instant::now() - sent, 300 * MS, "{fault}");
        wait_sim_idle(&sim).await;
    }
    let m = metrics(gw.admin_addr).await;
    assert_eq!(
        metric_sum(
            &m,
            "infergate_requests_total",
            &[("outcome", "timeout_first_token")]
        ),
        2.0
    );
    assert_eq!(
        metric_sum(
            &m,
            "infergate_upstream_failures_total",
            &[("reason", "timeout")]
        ),
        2.0
    );
    wait_metric(gw.admin_addr, "infergate_endpoint_in_flight", &[], 0.0).await;
}

#[tokio::test(start_paused = true)]
async fn slow_first_token_is_a_504_with_an_openai_body() {
    let _clock = ManualClock::hold();
    let slow = sim(3000, 1).await;
    let extra = "    timeouts: { first_token: 200ms }\n";
    let gw = gateway(&config(&[url(&slow)], extra, "")).await;
    let call = Call::post(gw.data_addr, "/v1/chat/completions", &chat_stream(8), &[]);
    wait_received(&slow, 1).await;
    advance(199 * MS).await;
    never("answered before the deadline", || async { call.finished() }).await;
    advance(MS).await;
    let r = call.reply().await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(r.headers["content-type"], "application/json");
    let e = &r.json()["error"];
    assert_eq!(e["code"], "upstream_first_token_timeout", "{e}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    assert!(e["type"].is_string(), "{e}");
    wait_sim_idle(&slow).await;
}

#[tokio::test(start_paused = true)]
async fn a_hanging_endpoint_is_retried_on_the_other_after_the_deadline() {
    let _clock = ManualClock::hold();
    let hanging = sim_with(SimConfig {
        faults: vec!["hang".parse().unwrap()],
        ..SimConfig::default()
    })
    .await;
    let good = sim(0, 0).await;
    let extra = "    timeouts: { first_token: 300ms }\n    outlier: { consecutive_failures: 0 }\n";
    let gw = gateway(&config(&[url(&hanging), url(&good)], extra, "")).await;
    // The pick is random: send until the hanging endpoint got two requests.
    let mut moved = 0;
    for _ in 0..40 {
        let before = hanging.requests_received();
        let call = Call::post(gw.data_addr, "/v1/chat/completions", &chat_stream(4), &[]);
        let hung = eventually("the request went nowhere", || async {
            if hanging.requests_received() > before {
                Ok(true)
            } else if call.finished() {
                Ok(false)
            } else {
                Err("pending".to_owned())
            }
        })
        .await;
        if hung {
            let good_before = good.requests_received();
            advance(299 * MS).await;
            never("moved before the deadline", || async {
                good.requests_received() > good_before || call.finished()
            })
            .await;
            advance(MS).await;
            moved += 1;
        }
        let sent = call.sent;
        let r = call.reply().await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.events().last().unwrap().1, "[DONE]");
        let took = Instant::now() - sent;
        assert_eq!(took, if hung { 300 * MS } else { Duration::ZERO });
        if moved == 2 {
            break;
        }
    }
    assert_eq!(moved, 2, "the hanging endpoint was never picked");
    let m = metrics(gw.admin_addr).await;
    assert_eq!(
        metric_sum(
            &m,
            "infergate_upstream_failures_total",
            &[("reason", "timeout")]
        ),
        2.0
    );
    assert_eq!(
        metric_sum(&m, "infergate_retries_total", &[("result", "retried")]),
        2.0
    );
    wait_metric(gw.admin_addr, "infergate_endpoint_in_flight", &[], 0.0).await;
}

#[tokio::test(start_paused = true)]
async fn stall_mid_stream_ends_with_an_error_event_at_the_idle_deadline() {
    let _clock = ManualClock::hold();
    let sim = sim(0, 0).await;
    let extra = "    timeouts: { idle: 300ms }\n";
    let gw = gateway(&config(&[url(&sim)], extra, "")).await;
    let call = Call::post(
        gw.data_addr,
        "/v1/chat/completions",
        &chat_stream(8),
        &[("x-sim-fault", "stall-after=3")],
    );
    eventually("three tokens never arrived", || async {
        match token_events(&call.events()).len() {
            3 => Ok(()),
            n => Err(format!("{n} tokens")),
        }
    })
    .await;
    let stalled_at = Instant::now();
    advance(299 * MS).await;
    never("the stream ended before the idle deadline", || async {
        call.finished()
    })
    .await;
    advance(MS).await;
    let r = call.reply().await;
    assert_eq!(r.status, StatusCode::OK);
    let events = r.events();
    assert_eq!(token_events(&events).len(), 3, "{events:?}");
    let (at, last) = events.last().unwrap();
    assert_eq!(*at - stalled_at, 300 * MS);
    let last: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(last["error"]["code"], "upstream_stalled");
    let m = metrics(gw.admin_addr).await;
    assert_eq!(
        metric_sum(
            &m,
            "infergate_requests_total",
            &[("outcome", "timeout_idle")]
        ),
        1.0
    );
    assert_eq!(
        metric_sum(
            &m,
            "infergate_upstream_failures_total",
            &[("reason", "stall")]
        ),
        1.0
    );
    assert_eq!(
        metric_sum(&m, "infergate_time_to_first_token_seconds_count", &[]),
        1.0
    );
    wait_metric(gw.admin_addr, "infergate_endpoint_in_flight", &[], 0.0).await;
    wait_sim_idle(&sim).await;
}

#[tokio::test(start_paused = true)]
async fn total_timeout_ends_a_stream_that_keeps_sending() {
    let _clock = ManualClock::hold();
    // A token every 300 ms, 1000 tokens: only the total timeout can end it early. Tokens come
    // at 0, 300, 600 and 900 ms; the next would be due at 1200 ms.
    let sim = sim(0, 300).await;
    let extra = "    timeouts: { first_token: 500ms, idle: 30s, total: 1s }\n";
    let gw = gateway(&config(&[url(&sim)], extra, "")).await;
    let call = Call::post(
        gw.data_addr,
        "/v1/chat/completions",
        &chat_stream(1000),
        &[],
    );
    for n in 1..=4 {
        eventually("tokens stopped", || async {
            match token_events(&call.events()).len() {
                got if got >= n => Ok(()),
                got => Err(format!("{got} tokens, waiting for {n}")),
            }
        })
        .await;
        if n < 4 {
            advance(300 * MS).await;
        }
    }
    // 900 ms after the request.
    advance(99 * MS).await;
    never("the stream ended before the total deadline", || async {
        call.finished()
    })
    .await;
    advance(MS).await;
    let sent = call.sent;
    let r = call.reply().await;
    assert_eq!(r.status, StatusCode::OK);
    let events = r.events();
    let (at, last) = events.last().unwrap();
    assert_eq!(*at - sent, Duration::from_secs(1));
    let last: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(last["error"]["code"], "upstream_timeout", "{last}");
    assert_eq!(token_events(&events).len(), 4);
    assert_eq!(
        metric(
            gw.admin_addr,
            "infergate_requests_total",
            &[("outcome", "timeout_total")]
        )
        .await,
        1.0
    );
    wait_metric(gw.admin_addr, "infergate_endpoint_in_flight", &[], 0.0).await;
    wait_sim_idle(&sim).await;
}
