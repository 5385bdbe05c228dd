#![allow(clippy::unwrap_used)]

use super::*;
use infergate_wire::feed::{FeedDoc, FeedGpu, GpuHealth};

fn yaml(ports: &[u16], hold_down: &str) -> String {
    let eps: Vec<String> = ports
        .iter()
        .map(|p| format!("{{url: 'http://127.0.0.1:{p}', labels: {{node: n{p}, gpus: '0'}}}}"))
        .collect();
    format!(
        "listeners: {{ data: {{ address: '127.0.0.1:0' }}, admin: {{ address: '127.0.0.1:0' }} }}\n\
         health_feeds: [{{ url: 'http://127.0.0.1:9/v1/health', hold_down: {hold_down} }}]\n\
         backends: [{{ name: a, endpoints: [{}] }}, {{ name: b, endpoints: [{{url: 'http://127.0.0.1:9'}}] }}]\n\
         models: [{{ name: ma, backend: a }}, {{ name: mb, backend: b }}]\n",
        eps.join(", ")
    )
}

async fn start(text: &str) -> (Arc<Published>, WriterHandle) {
    spawn(text.to_owned(), None, Arc::new(Metrics::new().unwrap()))
        .await
        .unwrap()
}

fn endpoint(port: u16) -> infergate_config::Endpoint {
    infergate_config::Endpoint {
        url: format!("http://127.0.0.1:{port}"),
        labels: [
            ("node".to_owned(), format!("n{port}")),
            ("gpus".to_owned(), "0".to_owned()),
        ]
        .into_iter()
        .collect(),
        require_warm: false,
    }
}

fn unhealthy(node: &str) -> FeedDoc {
    FeedDoc {
        version: 1,
        node: node.into(),
        gpus: vec![FeedGpu {
            index: 0,
            uuid: String::new(),
            state: GpuHealth::Unhealthy,
            reasons: vec!["XID 79".into()],
            read_at_ms: 0,
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn apply_endpoints_through_the_writer_publishes_a_new_table() {
    let (published, writer) = start(&yaml(&[1, 2], "0s")).await;
    let before = published.table.load_full();
    let kept = before.backend("a").unwrap().endpoints[1].state.clone();
    let rebuilt = writer
        .apply_endpoints("a", vec![endpoint(2), endpoint(3)])
        .await
        .unwrap();
    assert_eq!(
        rebuilt,
        Rebuilt {
            backends: 1,
            models: 1
        }
    );
    let after = published.table.load_full();
    let a = after.backend("a").unwrap();
    let urls: Vec<&str> = a.endpoints.iter().map(|e| &*e.state.url).collect();
    assert_eq!(urls, ["http://127.0.0.1:2", "http://127.0.0.1:3"]);
    assert!(Arc::ptr_eq(&a.endpoints[0].state, &kept));
    assert!(Arc::ptr_eq(
        before.route("mb").unwrap(),
        after.route("mb").unwrap()
    ));
    // The request that loaded the old table still has the old set.
    assert_eq!(before.backend("a").unwrap().endpoints.len(), 2);
    // The config status is the file's: endpoint sets are not config reloads.
    assert_eq!(published.status.load().version, 1);
    // An empty set is allowed (every pod gone); an unknown backend is not.
    writer.apply_endpoints("a", vec![]).await.unwrap();
    assert!(published
        .table
        .load()
        .backend("a")
        .unwrap()
        .endpoints
        .is_empty());
    let err = writer.apply_endpoints("zz", vec![]).await.unwrap_err();
    assert_eq!(err.0[0].path, "backends.zz");
}

#[tokio::test]
async fn new_endpoints_learn_gpu_health_before_they_are_published() {
    let (published, writer) = start(&yaml(&[1], "0s")).await;
    let feed = "http://127.0.0.1:9/v1/health";
    writer.feed(feed, unhealthy("n5")).await;
    writer
        .apply_endpoints("a", vec![endpoint(1), endpoint(5)])
        .await
        .unwrap();
    let t = published.table.load_full();
    let a = t.backend("a").unwrap();
    let now = Instant::now();
    assert!(!a.endpoints[0].state.is_ejected(now));
    assert!(
        a.endpoints[1].state.is_ejected(now),
        "blocked when first published"
    );
    // The feed goes stale: fail open.
    writer.feed_stale(feed).await;
    writer
        .apply_endpoints("b", vec![endpoint(9)])
        .await
        .unwrap(); // a barrier
    assert!(!a.endpoints[1].state.is_ejected(Instant::now()));
}

#[tokio::test]
async fn a_bad_config_keeps_the_table_and_is_recorded() {
    let text = yaml(&[1], "0s");
    let (published, writer) = start(&text).await;
    let before = published.table.load_full();
    let err = writer
        .apply("listeners: {}\n".into(), Trigger::Admin)
        .await
        .unwrap_err();
    assert!(!err.0.is_empty());
    assert!(Arc::ptr_eq(&before, &published.table.load_full()));
    let st = published.status.load();
    assert_eq!((st.version, st.reloads_failed), (1, 1));
    assert_eq!(st.last_error.as_ref().unwrap().trigger, "admin");
    // The same text again: a new version, nothing rebuilt.
    assert_eq!(writer.apply(text, Trigger::Admin).await.unwrap(), 2);
    let after = published.table.load_full();
    assert!(Arc::ptr_eq(
        before.route("ma").unwrap(),
        after.route("ma").unwrap()
    ));
    assert!(published.status.load().last_error.is_none());
    // No file: a reload says so.
    assert!(writer.reload(Trigger::Admin).await.is_err());
}

#[tokio::test]
async fn a_sick_gpu_ejects_exactly_the_pod_that_holds_it() {
    use infergate_wire::feed::{FeedPod, FeedPodGpu};
    let (published, writer) = start(&yaml(&[1], "0s")).await;
    // Two pods on one node, found without a `gpus` label: only PodResources tells them apart.
    let pod = |port: u16, name: &str| infergate_config::Endpoint {
        url: format!("http://127.0.0.1:{port}"),
        labels: [("node", "gpu-node"), ("pod", name)].into_iter().collect(),
        require_warm: false,
    };
    writer
        .apply_endpoints(
            "a",
            vec![
                pod(11, "models/a-0"),
                pod(12, "models/a-1"),
                pod(13, "models/cpu"),
            ],
        )
        .await
        .unwrap();
    let gpu = |index: u32, uuid: &str, state| FeedGpu {
        index,
        uuid: uuid.into(),
        state,
        reasons: vec!["XID 79".into()],
        read_at_ms: 0,
    };
    let held = |name: &str, uuid: &str| FeedPod {
        namespace: "models".into(),
        name: name.into(),
        container: "vllm".into(),
        gpus: vec![FeedPodGpu {
            uuid: uuid.into(),
            index: None,
        }],
    };
    let doc = FeedDoc {
        version: 2,
        node: "gpu-node".into(),
        gpus: vec![
            gpu(0, "GPU-aaa", GpuHealth::Healthy),
            gpu(1, "GPU-bbb", GpuHealth::Unhealthy),
        ],
        pods: vec![held("a-0", "GPU-aaa"), held("a-1", "GPU-bbb")],
        ..Default::default()
    };
    writer
        .feed("http://127.0.0.1:9/v1/health", doc.clone())
        .await;
    // A reply from the writer means the feed message before it was handled.
    writer
        .apply_endpoints("b", vec![endpoint(9)])
        .await
        .unwrap();
    let ejected = |url: &str| {
        let t = published.table.load_full();
        let e = t
            .backend("a")
            .unwrap()
            .endpoints
            .iter()
            .find(|e| &*e.state.url == url)
            .map(|e| e.state.is_ejected(Instant::now()));
        e.unwrap()
    };
    assert!(!ejected("http://127.0.0.1:11"), "a-0 holds the healthy GPU");
    assert!(ejected("http://127.0.0.1:12"), "a-1 holds the sick GPU");
    assert!(
        !ejected("http://127.0.0.1:13"),
        "a pod the feed lists no GPU for holds none"
    );

    // Without PodResources on the feed, a pod with no `gpus` label is out with any sick GPU.
    let bare = FeedDoc {
        version: 3,
        pods: Vec::new(),
        ..doc
    };
    writer.feed("http://127.0.0.1:9/v1/health", bare).await;
    writer
        .apply_endpoints("b", vec![endpoint(9)])
        .await
        .unwrap();
    assert!(ejected("http://127.0.0.1:11"));
    assert!(ejected("http://127.0.0.1:13"));
}

/// The weights of model `demo`'s first rule in the live table.
fn demo_split(published: &Published) -> Vec<(String, u32)> {
    let t = published.table.load_full();
    let r = t.route("demo").unwrap().clone();
    r.rules[0]
        .split
        .iter()
        .map(|s| (r.variants[s.variant].name.to_string(), s.weight))
        .collect()
}

/// Waits (up to 2 s) until `demo`'s split is `want`.
async fn split_becomes(published: &Published, want: &[(&str, u32)]) {
    let want: Vec<(String, u32)> = want.iter().map(|(v, w)| ((*v).to_owned(), *w)).collect();
    for _ in 0..200 {
        if demo_split(published) == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(demo_split(published), want);
}

#[tokio::test]
async fn release_weights_from_a_feed_hold_across_reloads_and_a_stale_feed() {
    use infergate_wire::feed::FeedRelease;
    let yaml = "listeners: { data: { address: '127.0.0.1:0' }, admin: { address: '127.0.0.1:0' } }\n\
        health_feeds: [{ url: 'http://127.0.0.1:9/v1/health' }]\n\
        backends: [{ name: a, endpoints: [{url: 'http://127.0.0.1:1'}] }, { name: b, endpoints: [{url: 'http://127.0.0.1:2'}] }]\n\
        models:\n\
        - name: demo\n\
        \x20 variants: [{ name: stable, backend: a }, { name: canary, backend: b }]\n\
        \x20 routes: [{ split: [{ variant: stable, weight: 100 }, { variant: canary, weight: 0 }] }]\n\
        - { name: other, backend: a }\n";
    let (published, writer) = start(yaml).await;
    // Only non-zero weights are kept in a compiled split.
    assert_eq!(demo_split(&published), [("stable".to_string(), 100)]);
    let doc = |generation, canary| FeedDoc {
        version: generation,
        node: "n".into(),
        releases: vec![FeedRelease {
            name: "demo-v2".into(),
            model: "demo".into(),
            generation,
            weights: [("stable".into(), 100 - canary), ("canary".into(), canary)].into(),
            state: "running".into(),
        }],
        ..Default::default()
    };
    let feed = "http://127.0.0.1:9/v1/health";
    writer.feed(feed, doc(1, 25)).await;
    split_becomes(&published, &[("stable", 75), ("canary", 25)]).await;
    let other_before = published.table.load_full().route("other").unwrap().clone();

    // A reload of the same file keeps the release's weights, and the other model's route.
    writer.apply(yaml.to_owned(), Trigger::Admin).await.unwrap();
    assert_eq!(
        demo_split(&published),
        [("stable".to_string(), 75), ("canary".to_string(), 25)]
    );
    let other_after = published.table.load_full().route("other").unwrap().clone();
    assert!(
        Arc::ptr_eq(&other_before, &other_after),
        "a model without a release was rebuilt"
    );

    // The feed goes stale: the weights stay. (A reply from the writer means it handled the
    // message before.)
    writer.feed_stale(feed).await;
    writer.apply(yaml.to_owned(), Trigger::Admin).await.unwrap();
    assert_eq!(
        demo_split(&published),
        [("stable".to_string(), 75), ("canary".to_string(), 25)]
    );

    // The release ends and is no longer listed: the config's split is back.
    writer
        .feed(
            feed,
            FeedDoc {
                version: 9,
                node: "n".into(),
                ..Default::default()
            },
        )
        .await;
    split_becomes(&published, &[("stable", 100)]).await;
}

#[test]
fn access_log_and_tracing_changes_are_refused_until_restart() {
    let base = yaml(&[1], "0s");
    let current = Config::from_yaml(&base).unwrap();
    let same = Config::from_yaml(&base).unwrap();
    assert!(restart_only(&current, &same).is_ok());
    let logged = Config::from_yaml(&format!("{base}access_log: {{ enabled: true }}\n")).unwrap();
    let err = restart_only(&current, &logged).unwrap_err().to_string();
    assert!(
        err.contains("access_log: access-log settings change only on restart"),
        "{err}"
    );
    let traced = Config::from_yaml(&format!(
        "{base}tracing: {{ otlp: {{ endpoint: 'http://127.0.0.1:4318/v1/traces' }} }}\n"
    ))
    .unwrap();
    let err = restart_only(&current, &traced).unwrap_err().to_string();
    assert!(
        err.contains("tracing: tracing settings change only on restart"),
        "{err}"
    );
}
