//! Writes through the API as kube-rs makes them: ConfigMaps and Leases created, updated with
//! a resourceVersion precondition (409 on a stale one), deleted, and watched by label.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::{client, next, within};
use futures::StreamExt;
use infergate_fake_kube::FakeKube;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::runtime::watcher::{self, watcher, Event};
use kube::ResourceExt;

fn cm(name: &str, label: Option<&str>, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: label.map(|l| BTreeMap::from([("app".to_owned(), l.to_owned())])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("k".to_owned(), value.to_owned())])),
        ..ConfigMap::default()
    }
}

fn code(err: kube::Error) -> (u16, String) {
    match err {
        kube::Error::Api(s) => (s.code, s.reason),
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test]
async fn config_maps_are_created_updated_with_preconditions_and_deleted() {
    let fake = FakeKube::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client(&fake).await, "sys");
    let pp = PostParams::default();
    let created = api.create(&pp, &cm("a", Some("x"), "1")).await.unwrap();
    assert_eq!(created.namespace().as_deref(), Some("sys"));
    assert!(created.uid().is_some());
    let rv1 = created.resource_version().unwrap();
    // Creating it again: 409 AlreadyExists.
    let err = api.create(&pp, &cm("a", None, "2")).await.unwrap_err();
    assert_eq!(code(err), (409, "AlreadyExists".into()));
    // An update with the version read succeeds and bumps it.
    let mut next_cm = created.clone();
    next_cm.data = Some(BTreeMap::from([("k".to_owned(), "2".to_owned())]));
    let updated = api.replace("a", &pp, &next_cm).await.unwrap();
    let rv2 = updated.resource_version().unwrap();
    assert_ne!(rv1, rv2);
    assert_eq!(updated.uid(), created.uid());
    assert_eq!(updated.data.as_ref().unwrap()["k"], "2");
    // The same update again carries the old version: 409 Conflict, nothing changes.
    let err = api.replace("a", &pp, &next_cm).await.unwrap_err();
    assert_eq!(code(err), (409, "Conflict".into()));
    let got = api.get("a").await.unwrap();
    assert_eq!(got.resource_version().unwrap(), rv2);
    // Without a version the update is unconditional.
    let mut blind = cm("a", Some("x"), "3");
    blind.metadata.resource_version = None;
    assert_eq!(
        api.replace("a", &pp, &blind).await.unwrap().data.unwrap()["k"],
        "3"
    );
    // Updating or deleting a missing one: 404.
    assert_eq!(
        code(
            api.replace("b", &pp, &cm("b", None, "1"))
                .await
                .unwrap_err()
        )
        .0,
        404
    );
    assert_eq!(fake.config_map_names("sys"), ["a"]);
    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(
        code(api.delete("a", &DeleteParams::default()).await.unwrap_err()).0,
        404
    );
    assert!(fake.config_map("sys", "a").is_none());
    assert!(api.get_opt("a").await.unwrap().is_none());
    let counters = fake.counters();
    assert_eq!((counters.writes, counters.conflicts), (4, 2));
}

#[tokio::test]
async fn a_name_or_namespace_that_disagrees_with_the_path_is_refused() {
    let fake = FakeKube::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client(&fake).await, "sys");
    let mut other_ns = cm("a", None, "1");
    other_ns.metadata.namespace = Some("elsewhere".into());
    let err = api
        .create(&PostParams::default(), &other_ns)
        .await
        .unwrap_err();
    assert_eq!(code(err).0, 400);
    api.create(&PostParams::default(), &cm("a", None, "1"))
        .await
        .unwrap();
    let err = api
        .replace("b", &PostParams::default(), &cm("a", None, "1"))
        .await
        .unwrap_err();
    assert_eq!(code(err).0, 400);
    assert!(fake.config_map("sys", "b").is_none());
}

#[tokio::test]
async fn a_label_watcher_sees_config_maps_come_change_and_go() {
    let fake = FakeKube::start().await.unwrap();
    let client = client(&fake).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "sys");
    let pp = PostParams::default();
    api.create(&pp, &cm("before", Some("rel"), "1"))
        .await
        .unwrap();
    api.create(&pp, &cm("other", Some("no"), "1"))
        .await
        .unwrap();
    let cfg = watcher::Config::default().labels("app=rel");
    let mut events = watcher(api.clone(), cfg).boxed();
    let mut initial = Vec::new();
    loop {
        match next(&mut events, "initial events").await.unwrap() {
            Event::InitApply(o) => initial.push(o.name_any()),
            Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, ["before"]);
    let made = api.create(&pp, &cm("new", Some("rel"), "1")).await.unwrap();
    match next(&mut events, "the new one").await.unwrap() {
        Event::Apply(o) => assert_eq!(o.name_any(), "new"),
        other => panic!("{other:?}"),
    }
    let mut changed = made.clone();
    changed.data = Some(BTreeMap::from([("k".to_owned(), "2".to_owned())]));
    api.replace("new", &pp, &changed).await.unwrap();
    match next(&mut events, "the change").await.unwrap() {
        Event::Apply(o) => assert_eq!(o.data.unwrap()["k"], "2"),
        other => panic!("{other:?}"),
    }
    api.delete("before", &DeleteParams::default())
        .await
        .unwrap();
    match next(&mut events, "the deletion").await.unwrap() {
        Event::Delete(o) => assert_eq!(o.name_any(), "before"),
        other => panic!("{other:?}"),
    }
    let listed = within("a list", api.list(&ListParams::default().labels("app=rel")))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
}

#[tokio::test]
async fn leases_are_taken_by_create_and_by_update_with_the_version_read() {
    let fake = FakeKube::start().await.unwrap();
    let api: Api<Lease> = Api::namespaced(client(&fake).await, "sys");
    let pp = PostParams::default();
    assert!(api.get_opt("l-0").await.unwrap().is_none());
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("l-0".into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("node-a".into()),
            lease_duration_seconds: Some(3),
            ..LeaseSpec::default()
        }),
    };
    let mine = api.create(&pp, &lease).await.unwrap();
    assert_eq!(code(api.create(&pp, &lease).await.unwrap_err()).0, 409);
    // Two takers read the same version; the second update is refused.
    let mut a = mine.clone();
    a.spec.as_mut().unwrap().holder_identity = Some("node-b".into());
    let mut b = mine.clone();
    b.spec.as_mut().unwrap().holder_identity = Some("node-c".into());
    api.replace("l-0", &pp, &a).await.unwrap();
    assert_eq!(code(api.replace("l-0", &pp, &b).await.unwrap_err()).0, 409);
    let stored = fake.lease("sys", "l-0").unwrap();
    assert_eq!(stored["spec"]["holderIdentity"], "node-b");
    assert_eq!(stored["apiVersion"], "coordination.k8s.io/v1");
}
