//! kube-rs' own watcher against the fake: the client the gateway uses.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{client, drive, eventually, next, until};
use futures::StreamExt;
use infergate_fake_kube::{FakeInferencePool, FakeKube, FakePod};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::ResourceExt;

type Item<K> = Result<Event<K>, watcher::Error>;

/// `Init`, `InitApply(name)`, `Apply(name)`, `Delete(name)`, `InitDone`, or `Err(...)`.
fn describe<K: ResourceExt>(item: &Item<K>) -> String {
    match item {
        Ok(ev) => ev.to_string(),
        Err(e) => format!("Err({e})"),
    }
}

fn ready(pod: &Pod) -> Option<String> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.clone())
}

fn vllm(name: &str) -> FakePod {
    FakePod::new("models", name)
        .label("app", "vllm")
        .node("gpu-1")
        .ip("10.0.0.1")
        .named_port("http", 8000)
}

#[tokio::test]
async fn pod_watcher_sees_added_modified_deleted_for_its_selector() {
    let fake = FakeKube::start().await.unwrap();
    fake.apply_pod(vllm("a"));
    fake.apply_pod(FakePod::new("models", "other").label("app", "sglang"));
    fake.apply_pod(FakePod::new("elsewhere", "b").label("app", "vllm"));
    let api: Api<Pod> = Api::namespaced(client(&fake).await, "models");
    let mut events = watcher(api, watcher::Config::default().labels("app=vllm")).boxed();

    let mut init = Vec::new();
    for _ in 0..3 {
        init.push(describe(&next(&mut events, "the initial list").await));
    }
    assert_eq!(init, ["Init", "InitApply(a)", "InitDone"]);

    fake.set_ready("models", "a", false).unwrap();
    let Ok(Event::Apply(pod)) = next(&mut events, "a not ready").await else {
        panic!("expected Apply")
    };
    assert_eq!(ready(&pod).as_deref(), Some("False"));
    assert_eq!(
        pod.spec.as_ref().unwrap().node_name.as_deref(),
        Some("gpu-1")
    );
    assert_eq!(
        pod.status.as_ref().unwrap().pod_ip.as_deref(),
        Some("10.0.0.1")
    );
    let ports = pod.spec.as_ref().unwrap().containers[0]
        .ports
        .clone()
        .unwrap();
    assert_eq!(
        (ports[0].name.as_deref(), ports[0].container_port),
        (Some("http"), 8000)
    );

    fake.apply_pod(vllm("c"));
    fake.set_terminating("models", "a").unwrap();
    fake.delete_pod("models", "a").unwrap();
    fake.apply_pod(FakePod::new("models", "c").label("app", "other"));
    fake.apply_pod(FakePod::new("models", "unrelated").label("app", "sglang"));
    let mut seen = Vec::new();
    let mut terminating = None;
    for _ in 0..4 {
        let item = next(&mut events, "the changes").await;
        if let Ok(Event::Apply(pod)) = &item {
            if pod.name_any() == "a" {
                terminating = Some(pod.metadata.deletion_timestamp.is_some());
            }
        }
        seen.push(describe(&item));
    }
    // The relabelled pod leaves the selector: the watch reports it deleted.
    assert_eq!(seen, ["Apply(c)", "Apply(a)", "Delete(a)", "Delete(c)"]);
    assert_eq!(terminating, Some(true));

    let counters = fake.counters();
    assert_eq!(counters.lists, 1);
    assert_eq!(counters.watches, 1);
    let log = fake.requests();
    let list = log
        .iter()
        .find(|r| !r.query.contains("watch=true"))
        .unwrap();
    assert_eq!(list.path, "/api/v1/namespaces/models/pods");
    assert!(
        list.query.contains("labelSelector=app%3Dvllm"),
        "{}",
        list.query
    );
    assert!(list.query.contains("limit=500"), "{}", list.query);
}

#[tokio::test]
async fn pod_watcher_lists_again_after_compaction() {
    let fake = FakeKube::start().await.unwrap();
    fake.apply_pod(vllm("a"));
    let api: Api<Pod> = Api::namespaced(client(&fake).await, "models");
    let mut events = watcher(api, watcher::Config::default()).boxed();
    until(&mut events, "the first InitDone", |i| {
        matches!(i, Ok(Event::InitDone))
    })
    .await
    .unwrap();

    fake.apply_pod(vllm("b"));
    until(&mut events, "b", |i| describe(i) == "Apply(b)")
        .await
        .unwrap();
    fake.compact();
    let Err(watcher::Error::WatchError(status)) = next(&mut events, "the 410").await else {
        panic!("expected an in-stream watch error")
    };
    assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
    let mut relist = Vec::new();
    for _ in 0..4 {
        relist.push(describe(&next(&mut events, "the second list").await));
    }
    assert_eq!(relist, ["Init", "InitApply(a)", "InitApply(b)", "InitDone"]);
    fake.delete_pod("models", "a").unwrap();
    assert_eq!(
        describe(&next(&mut events, "the delete").await),
        "Delete(a)"
    );
    let counters = fake.counters();
    assert_eq!((counters.lists, counters.gone), (2, 1));
    assert!(counters.watches >= 2);
}

#[tokio::test]
async fn pod_watcher_recovers_after_an_outage_with_the_current_state() {
    let fake = FakeKube::start().await.unwrap();
    fake.apply_pod(vllm("a"));
    let api: Api<Pod> = Api::namespaced(client(&fake).await, "models");
    let mut events = drive(watcher(api, watcher::Config::default()).default_backoff());
    until(&mut events, "InitDone", |i| {
        matches!(i, Ok(Event::InitDone))
    })
    .await
    .unwrap();
    eventually("the watch to open", || fake.open_watches() == 1).await;

    fake.set_down(true);
    until(&mut events, "an error while down", Result::is_err)
        .await
        .unwrap_err();
    eventually("the watch to close", || fake.open_watches() == 0).await;
    fake.apply_pod(vllm("b"));
    fake.delete_pod("models", "a").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(fake.counters().refused >= 1);

    fake.set_down(false);
    let up = Instant::now();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let item = next(&mut events, "the changes made while down").await;
        if item.is_ok() {
            seen.push(describe(&item));
        }
    }
    assert_eq!(seen, ["Apply(b)", "Delete(a)"]);
    assert!(
        up.elapsed() < Duration::from_secs(15),
        "recovered after {:?}",
        up.elapsed()
    );
}

#[tokio::test]
async fn inference_pool_watcher_sees_spec_changes() {
    let fake = FakeKube::start().await.unwrap();
    fake.apply_inference_pool(
        FakeInferencePool::new("models", "qwen")
            .selector("app", "vllm")
            .target_port(8000),
    );
    let gvk = GroupVersionKind::gvk("inference.networking.k8s.io", "v1", "InferencePool");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "inferencepools");
    let api: Api<DynamicObject> = Api::namespaced_with(client(&fake).await, "models", &resource);
    let mut events = watcher(api, watcher::Config::default()).boxed();

    assert_eq!(describe(&next(&mut events, "Init").await), "Init");
    let Ok(Event::InitApply(pool)) = next(&mut events, "the pool").await else {
        panic!("expected InitApply")
    };
    assert_eq!(pool.data["spec"]["selector"]["matchLabels"]["app"], "vllm");
    assert_eq!(pool.data["spec"]["targetPorts"][0]["number"], 8000);
    assert_eq!(pool.metadata.generation, Some(1));
    assert_eq!(describe(&next(&mut events, "InitDone").await), "InitDone");

    fake.apply_inference_pool(
        FakeInferencePool::new("models", "qwen")
            .selector("app", "vllm")
            .target_port(8001),
    );
    let Ok(Event::Apply(pool)) = next(&mut events, "the new port").await else {
        panic!("expected Apply")
    };
    assert_eq!(pool.data["spec"]["targetPorts"][0]["number"], 8001);
    assert_eq!(pool.metadata.generation, Some(2));
    assert_eq!(pool.types.as_ref().unwrap().kind, "InferencePool");

    fake.delete_inference_pool("models", "qwen").unwrap();
    assert_eq!(
        describe(&next(&mut events, "the delete").await),
        "Delete(qwen)"
    );
    assert!(fake.delete_inference_pool("models", "qwen").is_err());
}
