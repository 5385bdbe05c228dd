//! Release weights from a feed: a starting gateway turns ready only once its feed has answered,
//! so its first requests already follow the release's weights.

use std::time::Duration;

use infergate_loadtest::sim::{SimConfig, Simulator};
use serde_json::json;

use crate::common::*;

async fn variant_sim(version: &str) -> Simulator {
    sim_with(SimConfig {
        ttft: Duration::ZERO,
        itl: Duration::ZERO,
        served_version: Some(version.to_owned()),
        ..SimConfig::default()
    })
    .await
}

#[tokio::test]
async fn a_starting_gateway_is_ready_only_with_the_release_weights_of_its_feed() {
    let (stable, canary) = (variant_sim("stable").await, variant_sim("canary").await);
    // Version 0: the gateway's first long poll (since=0) waits until the next publish.
    let feed = FeedServer::start(json!({"version": 0, "node": "node-a"})).await;
    let yaml = format!(
        "listeners: {{ data: {{ address: '127.0.0.1:0' }}, admin: {{ address: '127.0.0.1:0' }} }}\n\
         health_feeds: [{{ url: '{}' }}]\n\
         backends:\n  - {{ name: s, endpoints: [{{ url: '{}' }}] }}\n  - {{ name: c, endpoints: [{{ url: '{}' }}] }}\n\
         models:\n  - name: demo\n    variants: [{{ name: stable, backend: s }}, {{ name: canary, backend: c }}]\n\
         \x20   routes: [{{ split: [{{ variant: stable, weight: 100 }}, {{ variant: canary, weight: 0 }}] }}]\n",
        feed.url(),
        url(&stable),
        url(&canary)
    );
    let gw = gateway(&yaml).await;
    real_sleep(Duration::from_millis(300)).await;
    assert_eq!(get(gw.admin_addr, "/readyz").await.status, 503);

    feed.publish(json!({"version": 1, "node": "node-a", "releases": [{
        "name": "demo-v2", "model": "demo", "generation": 4,
        "weights": {"stable": 0, "canary": 100}, "state": "running"
    }]}));
    eventually("ready after the feed's first answer", || async {
        match get(gw.admin_addr, "/readyz").await.status.as_u16() {
            200 => Ok(()),
            s => Err(s.to_string()),
        }
    })
    .await;
    for _ in 0..10 {
        let r = post(gw.data_addr, "/v1/chat/completions", &chat_stream(2)).await;
        assert_eq!(r.headers["x-served-version"], "canary");
    }
    let page = metrics(gw.admin_addr).await;
    assert_eq!(
        metric_sum(
            &page,
            "infergate_release_weight",
            &[("release", "demo-v2"), ("variant", "canary")]
        ),
        100.0
    );
    assert_eq!(
        metric_sum(&page, "infergate_release_stale", &[("release", "demo-v2")]),
        0.0
    );
}
