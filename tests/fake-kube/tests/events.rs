//! core/v1 Events as kube-rs posts them: created with `generateName`, read back with get,
//! list (field selectors on the involved object and reason) and watch, and through
//! [`FakeKube::events`].

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{client, next, within};
use futures::StreamExt;
use infergate_fake_kube::FakeKube;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use kube::api::{Api, ListParams, ObjectMeta, PostParams, WatchEvent, WatchParams};
use kube::ResourceExt;

/// An Event about node `node`, shaped as infergate's remediation posts it.
fn node_event(node: &str, reason: &str, message: &str) -> Event {
    Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{node}.")),
            namespace: Some("default".into()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.into()),
            uid: Some(node.into()),
            ..ObjectReference::default()
        },
        type_: Some("Normal".into()),
        reason: Some(reason.into()),
        action: Some("Release".into()),
        message: Some(message.into()),
        source: Some(EventSource {
            component: Some("infergate-control".into()),
            host: Some(node.into()),
        }),
        count: Some(1),
        ..Event::default()
    }
}

#[tokio::test]
async fn events_are_created_with_generated_names_and_read_back() {
    let fake = FakeKube::start().await.unwrap();
    let api: Api<Event> = Api::namespaced(client(&fake).await, "default");
    let pp = PostParams {
        field_manager: Some("infergate-control".into()),
        ..PostParams::default()
    };
    let first = api
        .create(
            &pp,
            &node_event("node-a", "ReleaseStep", "release r: step 1"),
        )
        .await
        .unwrap();
    let second = api
        .create(
            &pp,
            &node_event("node-a", "ReleasePromoted", "release r: done"),
        )
        .await
        .unwrap();
    let third = api
        .create(
            &pp,
            &node_event("node-b", "ReleaseStep", "release s: step 1"),
        )
        .await
        .unwrap();
    // Generated names: the prefix and five more characters, all different.
    let names = [first.name_any(), second.name_any(), third.name_any()];
    for (n, prefix) in names.iter().zip(["node-a.", "node-a.", "node-b."]) {
        assert!(n.starts_with(prefix), "{n}");
        assert_eq!(n.len(), prefix.len() + 5, "{n}");
    }
    assert_ne!(names[0], names[1]);
    assert!(first.uid().is_some());
    assert_eq!(first.reason.as_deref(), Some("ReleaseStep"));

    // get, and list with field selectors as `kubectl describe node` does.
    let got = api.get(&names[1]).await.unwrap();
    assert_eq!(got.message.as_deref(), Some("release r: done"));
    assert_eq!(got.involved_object.name.as_deref(), Some("node-a"));
    let on_a = api
        .list(&ListParams::default().fields("involvedObject.kind=Node,involvedObject.name=node-a"))
        .await
        .unwrap();
    let mut reasons: Vec<String> = on_a.items.iter().filter_map(|e| e.reason.clone()).collect();
    reasons.sort();
    assert_eq!(reasons, ["ReleasePromoted", "ReleaseStep"]);
    let steps = api
        .list(&ListParams::default().fields("reason=ReleaseStep,source=infergate-control"))
        .await
        .unwrap();
    assert_eq!(steps.items.len(), 2);
    // Another namespace has none; an unknown field is refused.
    let other: Api<Event> = Api::namespaced(client(&fake).await, "kube-system");
    assert!(other
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    let err = api
        .list(&ListParams::default().fields("spec.nodeName=node-a"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 400),
        "{err}"
    );

    // The test control sees them in the order they were posted.
    let posted: Vec<String> = fake
        .events("default")
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(posted, ["ReleaseStep", "ReleasePromoted", "ReleaseStep"]);
    assert_eq!(fake.events("default")[0]["kind"], "Event");
    assert!(fake.events("kube-system").is_empty());
}

#[tokio::test]
async fn events_are_watched_and_named_ones_conflict() {
    let fake = FakeKube::start().await.unwrap();
    let api: Api<Event> = Api::namespaced(client(&fake).await, "default");
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = within("the watch", api.watch(&WatchParams::default(), &rv))
        .await
        .unwrap()
        .boxed();
    let pp = PostParams::default();
    let mut named = node_event("node-a", "ReleaseRolledBack", "release r: rolled back");
    named.metadata.generate_name = None;
    named.metadata.name = Some("node-a.fixed".into());
    named.type_ = Some("Warning".into());
    api.create(&pp, &named).await.unwrap();
    match next(&mut stream, "the ADDED event").await.unwrap() {
        WatchEvent::Added(e) => {
            assert_eq!(e.name_any(), "node-a.fixed");
            assert_eq!(e.type_.as_deref(), Some("Warning"));
        }
        other => panic!("expected ADDED, got {other:?}"),
    }
    let err = api.create(&pp, &named).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{err}"
    );
    // Neither a name nor generateName: 422.
    let mut nameless = named.clone();
    nameless.metadata.name = None;
    let err = api.create(&pp, &nameless).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422),
        "{err}"
    );
    assert_eq!(fake.events("default").len(), 1);
}
