//! The fake's protocol as kube-rs' client sees it: gets, paged and versioned lists, 410s,
//! bookmarks, timeouts, discovery and error shapes.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{client, next, within};
use futures::{StreamExt, TryStreamExt};
use infergate_fake_kube::{FakeKube, FakePod};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, VersionMatch, WatchEvent, WatchParams};
use kube::runtime::watcher::{self, watcher, Event};
use kube::ResourceExt;

fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter().map(ResourceExt::name_any).collect()
}

fn api_status(err: kube::Error) -> Box<kube::core::Status> {
    match err {
        kube::Error::Api(status) => status,
        other => panic!("expected an API error, got {other}"),
    }
}

async fn start_with_pods(n: usize) -> (FakeKube, Api<Pod>) {
    let fake = FakeKube::start().await.unwrap();
    for i in 0..n {
        fake.apply_pod(FakePod::new("models", format!("p{i}")).label("app", "vllm"));
    }
    let api = Api::namespaced(client(&fake).await, "models");
    (fake, api)
}

#[tokio::test]
async fn get_and_field_selectors() {
    let (fake, api) = start_with_pods(3).await;
    fake.apply_pod(FakePod::new("other", "p1"));
    let pod = api.get("p1").await.unwrap();
    assert_eq!(pod.namespace().as_deref(), Some("models"));
    assert!(pod.uid().is_some());
    assert!(api.get_opt("nope").await.unwrap().is_none());
    let status = api_status(api.get("nope").await.unwrap_err());
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(status.message, "pods \"nope\" not found");

    let one = api
        .list(&ListParams::default().fields("metadata.name=p2"))
        .await
        .unwrap();
    assert_eq!(names(&one.items), ["p2"]);
    let all: Api<Pod> = Api::all(api.clone().into_client());
    let everywhere = all
        .list(&ListParams::default().fields("metadata.name=p1"))
        .await
        .unwrap();
    assert_eq!(everywhere.items.len(), 2);
    let bad = api
        .list(&ListParams::default().fields("spec.bogus=x"))
        .await
        .unwrap_err();
    assert_eq!(api_status(bad).code, 400);
    let bad = api
        .list(&ListParams::default().labels("app in (x"))
        .await
        .unwrap_err();
    assert_eq!(api_status(bad).code, 400);
}

#[tokio::test]
async fn paged_lists_are_one_snapshot_until_compaction() {
    let (fake, api) = start_with_pods(5).await;
    let first = api.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(names(&first.items), ["p0", "p1"]);
    let rv = first.metadata.resource_version.clone().unwrap();
    assert_eq!(rv, "5");
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    let token = first.metadata.continue_.clone().unwrap();

    fake.delete_pod("models", "p3").unwrap();
    fake.apply_pod(FakePod::new("models", "p9"));
    let second = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(names(&second.items), ["p2", "p3"]);
    assert_eq!(second.metadata.resource_version.as_deref(), Some("5"));
    let token2 = second.metadata.continue_.clone().unwrap();
    let last = api
        .list(&ListParams::default().limit(2).continue_token(&token2))
        .await
        .unwrap();
    assert_eq!(names(&last.items), ["p4"]);
    assert!(last.metadata.continue_.is_none_or(|c| c.is_empty()));

    let exact = ListParams::default().at("5").matching(VersionMatch::Exact);
    assert_eq!(api.list(&exact).await.unwrap().items.len(), 5);
    let latest = api
        .list(
            &ListParams::default()
                .at("5")
                .matching(VersionMatch::NotOlderThan),
        )
        .await
        .unwrap();
    assert_eq!(names(&latest.items), ["p0", "p1", "p2", "p4", "p9"]);
    assert_eq!(latest.metadata.resource_version.as_deref(), Some("7"));

    fake.compact();
    let gone = api_status(
        api.list(&ListParams::default().limit(2).continue_token(&token))
            .await
            .unwrap_err(),
    );
    assert_eq!((gone.code, gone.reason.as_str()), (410, "Expired"));
    let gone = api_status(api.list(&exact).await.unwrap_err());
    assert_eq!(gone.code, 410);
    assert_eq!(fake.counters().gone, 2);
}

#[tokio::test]
async fn watch_from_a_compacted_version_gets_an_in_stream_410() {
    let (fake, api) = start_with_pods(2).await;
    fake.compact();
    let mut stream = api
        .watch(&WatchParams::default(), "1")
        .await
        .unwrap()
        .boxed();
    match next(&mut stream, "the error event").await.unwrap() {
        WatchEvent::Error(status) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected an ERROR event, got {other:?}"),
    }
    assert!(within("the end of the stream", stream.next())
        .await
        .is_none());

    // From the compaction point on, the watch replays what follows.
    let mut stream = api
        .watch(&WatchParams::default(), "2")
        .await
        .unwrap()
        .boxed();
    fake.apply_pod(FakePod::new("models", "p7"));
    match next(&mut stream, "the new pod").await.unwrap() {
        WatchEvent::Added(pod) => assert_eq!(pod.resource_version().as_deref(), Some("3")),
        other => panic!("expected ADDED, got {other:?}"),
    }
    assert_eq!(fake.counters().gone, 1);
}

#[tokio::test]
async fn bookmarks_on_demand_and_periodically() {
    let (fake, api) = start_with_pods(1).await;
    fake.set_bookmark_interval(None);
    let params = WatchParams::default().labels("app=none");
    let mut stream = api.watch(&params, "1").await.unwrap().boxed();
    fake.apply_pod(FakePod::new("models", "unseen").label("app", "vllm"));
    fake.send_bookmarks();
    match next(&mut stream, "a bookmark").await.unwrap() {
        WatchEvent::Bookmark(bm) => {
            assert_eq!(bm.metadata.resource_version, "2");
            assert_eq!(bm.types.kind, "Pod");
        }
        other => panic!("expected BOOKMARK, got {other:?}"),
    }

    fake.set_bookmark_interval(Some(Duration::from_millis(100)));
    let mut stream = api.watch(&params, "2").await.unwrap().boxed();
    let started = Instant::now();
    for _ in 0..3 {
        assert!(matches!(
            next(&mut stream, "periodic bookmarks").await.unwrap(),
            WatchEvent::Bookmark(_)
        ));
    }
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    let quiet = WatchParams::default().disable_bookmarks();
    let mut stream = api.watch(&quiet, "2").await.unwrap().boxed();
    fake.send_bookmarks();
    fake.apply_pod(FakePod::new("models", "seen"));
    assert!(matches!(
        next(&mut stream, "an event").await.unwrap(),
        WatchEvent::Added(_)
    ));
}

#[tokio::test]
async fn watch_timeout_ends_the_stream() {
    let (fake, api) = start_with_pods(1).await;
    let started = Instant::now();
    let stream = api
        .watch(&WatchParams::default().timeout(1), "1")
        .await
        .unwrap();
    let events: Vec<_> = within("the watch timeout", stream.try_collect::<Vec<_>>())
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
    assert!(events.iter().all(|e| matches!(e, WatchEvent::Bookmark(_))));
    let log = fake.requests();
    let watch = log.last().unwrap();
    assert!(
        watch.query.contains("watch=true") && watch.query.contains("timeoutSeconds=1"),
        "{}",
        watch.query
    );
    assert!(
        watch.query.contains("allowWatchBookmarks=true")
            && watch.query.contains("resourceVersion=1")
    );
    assert_eq!(fake.open_watches(), 0);
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events() {
    let (fake, api) = start_with_pods(2).await;
    let mut events = watcher(api, watcher::Config::default().streaming_lists()).boxed();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(
            next(&mut events, "the initial events")
                .await
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(seen, ["Init", "InitApply(p0)", "InitApply(p1)", "InitDone"]);
    fake.delete_pod("models", "p0").unwrap();
    assert!(
        matches!(next(&mut events, "the delete").await.unwrap(), Event::Delete(p) if p.name_any() == "p0")
    );
    assert_eq!(fake.counters().lists, 0);
}

#[tokio::test]
async fn discovery_and_unserved_paths() {
    let fake = FakeKube::start().await.unwrap();
    let client = client(&fake).await;
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
    let groups = client.list_api_groups().await.unwrap();
    assert_eq!(groups.groups[0].name, "inference.networking.k8s.io");
    let core = client.list_core_api_resources("v1").await.unwrap();
    assert_eq!(core.resources[0].name, "pods");

    let req = http::Request::get("/api/v1/namespaces/models/services")
        .body(Vec::new())
        .unwrap();
    let status = api_status(client.request_text(req).await.unwrap_err());
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    let req = http::Request::delete("/api/v1/namespaces/models/pods/x")
        .body(Vec::new())
        .unwrap();
    assert_eq!(
        api_status(client.request_text(req).await.unwrap_err()).code,
        405
    );
    assert_eq!(
        fake.requests().iter().map(|r| r.status).collect::<Vec<_>>(),
        [200, 200, 200, 404, 405]
    );
}

#[tokio::test]
async fn watch_object_follows_one_pod_by_field_selector() {
    let (fake, api) = start_with_pods(3).await;
    let mut events = kube::runtime::watcher::watch_object(api, "p1").boxed();
    let first = next(&mut events, "the pod").await.unwrap();
    assert_eq!(first.map(|p| p.name_any()).as_deref(), Some("p1"));
    fake.delete_pod("models", "p2").unwrap();
    fake.delete_pod("models", "p1").unwrap();
    assert!(next(&mut events, "the delete").await.unwrap().is_none());
    let log = fake.requests();
    assert!(
        log.iter()
            .all(|r| r.query.contains("fieldSelector=metadata.name%3Dp1")),
        "{log:?}"
    );
}

#[tokio::test]
async fn stopping_ends_open_watches() {
    let (fake, api) = start_with_pods(1).await;
    let mut stream = api
        .watch(&WatchParams::default().disable_bookmarks(), "1")
        .await
        .unwrap()
        .boxed();
    fake.stop();
    let end = within("the stream to end", stream.next()).await;
    assert!(!matches!(end, Some(Ok(_))), "{end:?}");
}
