#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use infergate_fake_kube::FakeKube;

use super::configmaps::{ConfigMaps, DATA_KEY};
use super::*;

const SPEC: &str = "\
name: demo-v2
model: demo
stable: stable
canary: canary
steps: [10, 100]
step_interval: 1s
gates: { ttft_p95_ratio: 1.5, tpot_p95_ratio: 1.5, error_rate_delta: 0.02, gpu_healthy: false }
source: { gateways: [\"http://127.0.0.1:1\"] }
";

/// A control process's releases on the fake, followed by a watch.
fn process(fake: &FakeKube, node: &str) -> (Arc<Releases>, Feed) {
    let uri = fake.url().parse().unwrap();
    let client = ::kube::Client::try_from(::kube::Config::new(uri)).unwrap();
    let store = Arc::new(ConfigMaps::new(client, "sys"));
    let feed = Feed::new(node);
    let metrics = ReleaseMetrics::new(&prometheus::Registry::new()).unwrap();
    let r = Releases::new(Backend::Kube(store.clone()), feed.clone(), metrics, None);
    tokio::spawn(watch::run(r.clone(), store));
    (r, feed)
}

async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_live_in_config_maps_that_every_process_publishes() {
    let fake = FakeKube::start().await.unwrap();
    let (a, _) = process(&fake, "node-a");
    let (b, feed_b) = process(&fake, "node-b");
    let made = a.create(SPEC).unwrap();
    let cm = fake.config_map("sys", "infergate-release-demo-v2").unwrap();
    assert_eq!(
        cm["metadata"]["labels"]["app.kubernetes.io/component"],
        "infergate-release"
    );
    let stored: Release = serde_json::from_str(cm["data"][DATA_KEY].as_str().unwrap()).unwrap();
    assert_eq!(stored.record.started_at_ms, made.record.started_at_ms);
    // The other process publishes it on its own feed.
    until("b publishes the release", || {
        feed_b
            .current()
            .releases
            .first()
            .map(|r| r.weights["canary"])
            == Some(10)
    })
    .await;
    // The same name from the other process: refused by its own copy, and by the cluster.
    let again = tokio::task::spawn_blocking({
        let b = b.clone();
        move || (b.create(SPEC), b.backend.create(&made))
    });
    let (local, cluster) = again.await.unwrap();
    assert!(matches!(local, Err(Refusal::Conflict(_))), "{local:?}");
    assert!(matches!(cluster, Err(Refusal::Conflict(_))), "{cluster:?}");
    // An abort through b is written with b's version; a write from a's older copy is then
    // refused and a gets the release as stored instead.
    let (old, old_version) = (a.get("demo-v2").unwrap(), a.version("demo-v2"));
    assert!(old_version.is_some());
    b.end("demo-v2", false).unwrap();
    let a2 = a.clone();
    let saved = tokio::task::spawn_blocking(move || a2.backend.save(&old, old_version))
        .await
        .unwrap();
    match saved {
        Saved::Stale(Some(current)) => assert_eq!(current.0.record.state, "aborted"),
        other => panic!("{other:?}"),
    }
    until("a sees the abort", || {
        a.get("demo-v2")
            .is_some_and(|r| r.record.state == "aborted")
    })
    .await;
    assert_eq!(fake.counters().conflicts, 2, "{:?}", fake.counters());
    // Deleting through a removes the ConfigMap, and b's feed drops the release.
    a.delete("demo-v2").unwrap();
    assert!(fake.config_map_names("sys").is_empty());
    until("b forgets the release", || {
        b.get("demo-v2").is_none() && feed_b.current().releases.is_empty()
    })
    .await;
}
