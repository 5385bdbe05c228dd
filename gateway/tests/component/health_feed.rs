//! GPU health from a feed: an endpoint on an unhealthy GPU is taken out, comes back exactly
//! `hold_down` after the feed says its GPU recovered, and a feed that cannot be read for
//! `stale_after` is forgotten (fail open).

use std::time::Duration;

use infergate_loadtest::sim::{SimConfig, Simulator};

use crate::common::*;

async fn gpu_sim(version: &str) -> Simulator {
    sim_with(SimConfig {
        ttft: Duration::ZERO,
        itl: Duration::ZERO,
        served_version: Some(version.to_owned()),
        ..SimConfig::default()
    })
    .await
}

fn gateway_config(feed: &str, gpu0: &Simulator, gpu1: &Simulator) -> String {
    [
        "listeners:".to_owned(),
        "  data: { address: \"127.0.0.1:0\" }".to_owned(),
        "  admin: { address: \"127.0.0.1:0\" }".to_owned(),
        "health_feeds:".to_owned(),
        format!("  - {{ url: \"{feed}\", stale_after: 2s, hold_down: 1s }}"),
        "backends:".to_owned(),
        "  - name: demo".to_owned(),
        "    endpoints:".to_owned(),
        format!(
            "      - {{ url: \"{}\", labels: {{ node: node-a, gpus: \"0\" }} }}",
            url(gpu0)
        ),
        format!(
            "      - {{ url: \"{}\", labels: {{ node: node-a, gpus: \"1\" }} }}",
            url(gpu1)
        ),
        "models:".to_owned(),
        "  - { name: demo, backend: demo }".to_owned(),
    ]
    .join("\n")
        + "\n"
}

/// Which GPU's server answered each of `n` requests.
async fn served(gw: &infergate_gateway::Running, n: usize) -> Vec<String> {
    let mut v = Vec::new();
    for _ in 0..n {
        let r = post(gw.data_addr, "/v1/chat/completions", &chat_stream(2)).await;
        assert_eq!(r.status, http::StatusCode::OK);
        v.push(r.headers["x-served-version"].to_str().unwrap().to_owned());
    }
    v
}

#[tokio::test(start_paused = true)]
async fn recovered_gpu_returns_exactly_after_the_hold_down() {
    let _clock = ManualClock::hold();
    let (gpu0, gpu1) = (gpu_sim("gpu0").await, gpu_sim("gpu1").await);
    let feed = FeedServer::start(gpu_doc(1, &[(1, "XID 79: GPU has fallen off the bus")])).await;
    let gw = gateway(&gateway_config(&feed.url(), &gpu0, &gpu1)).await;
    let ep = wait_state(gw.admin_addr, &url(&gpu1), "ejected").await;
    assert_eq!(ep["ejection"]["reason"], "gpu_unhealthy");
    assert!(
        ep["ejection"]["detail"]
            .as_str()
            .unwrap()
            .contains("XID 79"),
        "{ep}"
    );
    assert_eq!(
        endpoint(gw.admin_addr, &url(&gpu0)).await["state"],
        "healthy"
    );
    let before = served(&gw, 10).await;
    assert!(before.iter().all(|g| g == "gpu0"), "{before:?}");

    // The GPU recovers: the endpoint stays out for the hold-down, then comes back.
    feed.publish(gpu_doc(2, &[]));
    feed.wait_applied(2).await;
    let ep = endpoint(gw.admin_addr, &url(&gpu1)).await;
    assert_eq!(ep["state"], "ejected", "{ep}");
    let detail = ep["ejection"]["detail"].as_str().unwrap();
    assert!(detail.starts_with("recovered, in hold-down"), "{ep}");
    assert_remaining(&ep, 1.0);
    advance(990 * MS).await;
    assert_eq!(
        endpoint(gw.admin_addr, &url(&gpu1)).await["state"],
        "ejected"
    );
    assert!(served(&gw, 10).await.iter().all(|g| g == "gpu0"));
    advance(10 * MS).await;
    assert_eq!(
        endpoint(gw.admin_addr, &url(&gpu1)).await["state"],
        "healthy"
    );
    let after = served(&gw, 30).await;
    assert!(after.iter().any(|g| g == "gpu1"), "{after:?}");
    let m = metrics(gw.admin_addr).await;
    assert_eq!(
        metric_sum(&m, "infergate_endpoint_ejected", &[]),
        0.0,
        "{m}"
    );
    assert_eq!(metric_sum(&m, "infergate_health_feed_stale", &[]), 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_dead_feed_fails_open_after_stale_after_and_the_hold_down() {
    let _clock = ManualClock::hold();
    let (gpu0, gpu1) = (gpu_sim("gpu0").await, gpu_sim("gpu1").await);
    let feed = FeedServer::start(gpu_doc(1, &[(1, "XID 48: double-bit ECC error")])).await;
    let gw = gateway(&gateway_config(&feed.url(), &gpu0, &gpu1)).await;
    wait_state(gw.admin_addr, &url(&gpu1), "ejected").await;
    // The reader is waiting for the next version: its last read was now.
    feed.wait_applied(1).await;
    drop(feed);
    let killed = tokio::time::Instant::now();
    let admin = gw.admin_addr;
    let stale = advance_until(
        "the feed never went stale",
        100 * MS,
        Duration::from_secs(10),
        || async { metric(admin, "infergate_health_feed_stale", &[]).await == 1.0 },
    )
    .await;
    // Stale once `stale_after` (2 s) passed without a read; retries back off by at most 2 s.
    assert!(
        stale >= Duration::from_secs(2) && stale <= Duration::from_secs(4),
        "stale after {stale:?}"
    );
    advance_until(
        "the stale feed never failed open",
        100 * MS,
        Duration::from_secs(10),
        || async { endpoint(admin, &url(&gpu1)).await["state"] == "healthy" },
    )
    .await;
    // The forgotten feed counts as recovered, so the hold-down (1 s) applies after going stale.
    let back = killed.elapsed();
    assert!(
        back >= Duration::from_secs(3) && back <= Duration::from_millis(5500),
        "back {back:?} after the feed died"
    );
    let after = served(&gw, 30).await;
    assert!(after.iter().any(|g| g == "gpu1"), "{after:?}");
}
