//! A client that goes away mid-stream: the upstream request is cancelled at once (without the
//! clock moving), the endpoint is released, and the request is counted as cancelled after its
//! first token.

use tokio::time::Instant;

use crate::common::*;

#[tokio::test(start_paused = true)]
async fn client_disconnect_cancels_the_upstream_at_once_and_releases_the_endpoint() {
    let _clock = ManualClock::hold();
    let sim = sim(10, 100).await;
    let gw = gateway(&config(&[url(&sim)], "", "")).await;
    let call = Call::post(gw.data_addr, "/v1/chat/completions", &chat_stream(500), &[]);
    eventually("the upstream never started", || async {
        match sim.active_streams() {
            1 => Ok(()),
            n => Err(format!("{n} streams")),
        }
    })
    .await;
    // The first token reaches the client: TTFT is known before it leaves.
    advance(10 * MS).await;
    eventually("the first token never arrived", || async {
        match token_events(&call.events()).len() {
            0 => Err("no token".to_owned()),
            _ => Ok(()),
        }
    })
    .await;
    wait_metric(gw.admin_addr, "infergate_endpoint_in_flight", &[], 1.0).await;
    call.abort();
    let cut = Instant::now();
    eventually("the upstream kept generating", || async {
        match sim.active_streams() + sim.running() {
            0 => Ok(()),
            n => Err(format!("{n} running")),
        }
    })
    .await;
    assert_eq!(Instant::now(), cut, "the clock moved");
    wait_metric(gw.admin_addr, "infergate_endpoint_in_flight", &[], 0.0).await;
    let m = metrics(gw.admin_addr).await;
    assert_eq!(
        metric_sum(
            &m,
            "infergate_requests_total",
            &[("outcome", "client_cancelled")]
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric_sum(&m, "infergate_time_to_first_token_seconds_count", &[]),
        1.0
    );
}
