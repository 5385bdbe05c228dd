//! `KubeActions` against a mock API server: one test per action, asserting the method, path,
//! query, Content-Type and body of every call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mock_api;

use std::time::Duration;

use infergate_config::Dur;
use infergate_remediate::{
    Cause, Cordon, EventKind, GpuCondition, HostRequest, KubeActions, NodeActions, NodeEvent,
    NodeTaint, RemediationConfig, RemediationLock, TaintEffect,
};
use mock_api::{list, node, pod, status_body, MockApi, Recorded};
use serde_json::{json, Value};

const NODE: &str = "gpu-node-1";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const MERGE: &str = "application/merge-patch+json";
const JSON: &str = "application/json";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/infergate-system/leases";

fn config() -> RemediationConfig {
    let mut c = RemediationConfig::default();
    c.eviction.initial_backoff = Dur::millis(20);
    c.eviction.max_backoff = Dur::millis(80);
    c.eviction.deadline = Dur::secs(5);
    c
}

fn actions(api: &MockApi, config: RemediationConfig) -> KubeActions {
    KubeActions::from_url(api.url(), Some("test-token"), NODE, config).unwrap()
}

fn cause() -> Cause {
    Cause {
        gpus: vec![0, 1],
        code: "xid_79".into(),
        reason: "GPU 0: XID 79: GPU has fallen off the bus".into(),
    }
}

fn node_path() -> String {
    format!("/api/v1/nodes/{NODE}")
}

/// Method, path, fieldManager query, Content-Type and bearer token of a write.
fn assert_write(r: &Recorded, method: &str, path: &str, content_type: &str) {
    assert_eq!(r.method, method, "{}", r.line());
    assert_eq!(r.path, path, "{}", r.line());
    assert_eq!(
        r.query("fieldManager"),
        Some("infergate-control"),
        "{}",
        r.line()
    );
    assert_eq!(
        r.content_type.as_deref(),
        Some(content_type),
        "{}",
        r.line()
    );
    assert_eq!(r.authorization.as_deref(), Some("Bearer test-token"));
}

#[tokio::test]
async fn set_condition_patches_only_the_gpu_condition_of_nodes_status() {
    let api = MockApi::start().await;
    let status_path = format!("{}/status", node_path());
    api.on(
        "PATCH",
        &status_path,
        200,
        node(NODE, "7", json!({}), json!({})),
    );
    api.on(
        "PATCH",
        &status_path,
        200,
        node(NODE, "8", json!({}), json!({})),
    );
    let a = actions(&api, config());

    let unhealthy = GpuCondition {
        healthy: false,
        reason: "GpuUnhealthy".into(),
        message: "GPU 0: XID 79: GPU has fallen off the bus".into(),
        transition: true,
    };
    a.set_condition(&unhealthy, &cause()).await.unwrap();
    let refresh = GpuCondition {
        transition: false,
        ..unhealthy.clone()
    };
    a.set_condition(&refresh, &cause()).await.unwrap();

    let reqs = api.requests();
    assert_eq!(reqs.len(), 2, "{:?}", api.lines());
    for r in &reqs {
        assert_write(r, "PATCH", &status_path, STRATEGIC);
        // Only `status.conditions`, with only our condition: the strategic merge (patchMergeKey
        // `type`) keeps the kubelet's Ready, MemoryPressure, … conditions as they are.
        let body = r.body.as_object().unwrap();
        assert_eq!(body.keys().collect::<Vec<_>>(), ["status"]);
        let status = body["status"].as_object().unwrap();
        assert_eq!(status.keys().collect::<Vec<_>>(), ["conditions"]);
        let conditions = status["conditions"].as_array().unwrap();
        assert_eq!(conditions.len(), 1);
        let c = &conditions[0];
        assert_eq!(c["type"], "GpuHealthy");
        assert_eq!(c["status"], "False");
        assert_eq!(c["reason"], "GpuUnhealthy");
        assert_eq!(c["message"], "GPU 0: XID 79: GPU has fallen off the bus");
        assert!(c["lastHeartbeatTime"].as_str().unwrap().ends_with('Z'));
    }
    // lastTransitionTime only when the status flips; otherwise the node keeps its own.
    assert!(reqs[0].body["status"]["conditions"][0]["lastTransitionTime"].is_string());
    assert!(reqs[1].body["status"]["conditions"][0]
        .get("lastTransitionTime")
        .is_none());
    assert!(api.unused().is_empty(), "{:?}", api.unused());
}

#[tokio::test]
async fn add_taint_rereads_and_retries_on_conflict() {
    let api = MockApi::start().await;
    let path = node_path();
    let other = json!({ "key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule" });
    let late = json!({ "key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z" });
    api.on(
        "GET",
        &path,
        200,
        node(NODE, "100", json!({ "taints": [other] }), json!({})),
    );
    api.on(
        "PATCH",
        &path,
        409,
        status_body(409, "Conflict", "the object has been modified"),
    );
    // Meanwhile someone else added a taint: it must survive our write.
    api.on(
        "GET",
        &path,
        200,
        node(NODE, "101", json!({ "taints": [other, late] }), json!({})),
    );
    api.on("PATCH", &path, 200, node(NODE, "102", json!({}), json!({})));
    let a = actions(&api, config());

    let taint = NodeTaint {
        key: "infergate.io/gpu-unhealthy".into(),
        value: "0-1".into(),
        effect: TaintEffect::NoSchedule,
    };
    assert!(a.add_taint(&taint, &cause()).await.unwrap());

    assert_eq!(
        api.lines(),
        [
            format!("GET {path}"),
            format!("PATCH {path}"),
            format!("GET {path}"),
            format!("PATCH {path}")
        ]
    );
    let reqs = api.requests();
    let ours =
        json!({ "key": "infergate.io/gpu-unhealthy", "value": "0-1", "effect": "NoSchedule" });
    for (r, rv, taints) in [
        (&reqs[1], "100", json!([other, ours])),
        (&reqs[3], "101", json!([other, late, ours])),
    ] {
        assert_write(r, "PATCH", &path, MERGE);
        // The resourceVersion read makes the write conditional; the list is replaced whole.
        assert_eq!(
            r.body,
            json!({ "metadata": { "resourceVersion": rv }, "spec": { "taints": taints } })
        );
    }
    assert!(api.unused().is_empty(), "{:?}", api.unused());
}

#[tokio::test]
async fn add_taint_gives_up_after_repeated_conflicts() {
    let api = MockApi::start().await;
    let path = node_path();
    for i in 0..5 {
        api.on(
            "GET",
            &path,
            200,
            node(NODE, &format!("{i}"), json!({}), json!({})),
        );
        api.on(
            "PATCH",
            &path,
            409,
            status_body(409, "Conflict", "modified"),
        );
    }
    let a = actions(&api, config());
    let taint = NodeTaint {
        key: "infergate.io/gpu-unhealthy".into(),
        value: "3".into(),
        effect: TaintEffect::NoSchedule,
    };
    let err = a.add_taint(&taint, &cause()).await.unwrap_err();
    assert!(err.to_string().contains("409"), "{err}");
    assert_eq!(api.requests().len(), 10);
}

#[tokio::test]
async fn add_taint_present_already_writes_nothing_and_value_change_replaces_it() {
    let api = MockApi::start().await;
    let path = node_path();
    let ours = json!({ "key": "infergate.io/gpu-unhealthy", "value": "0", "effect": "NoSchedule" });
    api.on(
        "GET",
        &path,
        200,
        node(NODE, "5", json!({ "taints": [ours] }), json!({})),
    );
    api.on(
        "GET",
        &path,
        200,
        node(NODE, "5", json!({ "taints": [ours] }), json!({})),
    );
    api.on("PATCH", &path, 200, node(NODE, "6", json!({}), json!({})));
    let a = actions(&api, config());
    let mut taint = NodeTaint {
        key: "infergate.io/gpu-unhealthy".into(),
        value: "0".into(),
        effect: TaintEffect::NoSchedule,
    };
    assert!(!a.add_taint(&taint, &cause()).await.unwrap());
    taint.value = "0-3".into();
    assert!(a.add_taint(&taint, &cause()).await.unwrap());
    let reqs = api.requests();
    assert_eq!(reqs.len(), 3, "{:?}", api.lines());
    assert_eq!(
        reqs[2].body["spec"]["taints"],
        json!([{ "key": "infergate.io/gpu-unhealthy", "value": "0-3", "effect": "NoSchedule" }])
    );
}

#[tokio::test]
async fn remove_taint_keeps_the_others() {
    let api = MockApi::start().await;
    let path = node_path();
    let other = json!({ "key": "dedicated", "value": "llm", "effect": "NoSchedule" });
    let ours = json!({ "key": "infergate.io/gpu-unhealthy", "value": "0", "effect": "NoSchedule" });
    api.on(
        "GET",
        &path,
        200,
        node(NODE, "9", json!({ "taints": [other, ours] }), json!({})),
    );
    api.on("PATCH", &path, 200, node(NODE, "10", json!({}), json!({})));
    let a = actions(&api, config());
    assert!(a
        .remove_taint("infergate.io/gpu-unhealthy", &cause())
        .await
        .unwrap());
    let reqs = api.requests();
    assert_write(&reqs[1], "PATCH", &path, MERGE);
    assert_eq!(
        reqs[1].body,
        json!({ "metadata": { "resourceVersion": "9" }, "spec": { "taints": [other] } })
    );
}

#[tokio::test]
async fn cordon_and_uncordon() {
    let api = MockApi::start().await;
    let path = node_path();
    api.on("GET", &path, 200, node(NODE, "1", json!({}), json!({})));
    api.on(
        "PATCH",
        &path,
        200,
        node(NODE, "2", json!({ "unschedulable": true }), json!({})),
    );
    // Cordoned by someone else: left alone.
    api.on(
        "GET",
        &path,
        200,
        node(NODE, "3", json!({ "unschedulable": true }), json!({})),
    );
    // Cordoned by us before a restart.
    api.on(
        "GET",
        &path,
        200,
        node(
            NODE,
            "4",
            json!({ "unschedulable": true }),
            json!({ "infergate.io/cordoned-by": "infergate-control" }),
        ),
    );
    api.on("PATCH", &path, 200, node(NODE, "5", json!({}), json!({})));
    let a = actions(&api, config());

    assert_eq!(a.cordon(&cause()).await.unwrap(), Cordon::Cordoned);
    assert_eq!(a.cordon(&cause()).await.unwrap(), Cordon::AlreadyCordoned);
    assert_eq!(a.cordon(&cause()).await.unwrap(), Cordon::AlreadyOurs);
    a.uncordon(&cause()).await.unwrap();

    let reqs = api.requests();
    assert_eq!(
        api.lines(),
        [
            format!("GET {path}"),
            format!("PATCH {path}"),
            format!("GET {path}"),
            format!("GET {path}"),
            format!("PATCH {path}")
        ]
    );
    assert_write(&reqs[1], "PATCH", &path, STRATEGIC);
    assert_eq!(
        reqs[1].body,
        json!({
            "metadata": { "annotations": { "infergate.io/cordoned-by": "infergate-control" } },
            "spec": { "unschedulable": true }
        })
    );
    assert_write(&reqs[4], "PATCH", &path, STRATEGIC);
    assert_eq!(
        reqs[4].body,
        json!({
            "metadata": { "annotations": { "infergate.io/cordoned-by": null } },
            "spec": { "unschedulable": false }
        })
    );
}

fn pods_path() -> &'static str {
    "/api/v1/pods"
}

fn assert_pod_list(r: &Recorded) {
    assert_eq!(r.method, "GET");
    assert_eq!(r.path, pods_path());
    assert_eq!(
        r.query("labelSelector"),
        Some("app.kubernetes.io/component=model-server")
    );
    assert_eq!(r.query("fieldSelector"), Some("spec.nodeName=gpu-node-1"));
}

#[tokio::test]
async fn eviction_429_is_retried_with_backoff_then_succeeds_and_never_deletes() {
    let api = MockApi::start().await;
    let mut terminating = pod("llm", "ms-old", NODE, Some("0"));
    terminating["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    api.on(
        "GET",
        pods_path(),
        200,
        list(
            "PodList",
            vec![pod("llm", "ms-0", NODE, Some("0,1")), terminating],
        ),
    );
    let eviction = "/api/v1/namespaces/llm/pods/ms-0/eviction";
    let pdb = status_body(
        429,
        "TooManyRequests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
    );
    api.on("POST", eviction, 429, pdb.clone());
    api.on("POST", eviction, 429, pdb);
    api.on(
        "POST",
        eviction,
        201,
        json!({ "kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201 }),
    );
    let a = actions(&api, config());

    let report = a.evict_pods(&cause()).await.unwrap();
    assert_eq!(report.evicted, ["llm/ms-0"]);
    assert!(report.complete());

    let reqs = api.requests();
    assert_eq!(
        api.lines(),
        [
            format!("GET {}", pods_path()),
            format!("POST {eviction}"),
            format!("POST {eviction}"),
            format!("POST {eviction}")
        ]
    );
    assert_pod_list(&reqs[0]);
    for r in &reqs[1..] {
        assert_write(r, "POST", eviction, JSON);
        assert_eq!(
            r.body,
            json!({
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": { "name": "ms-0", "namespace": "llm" }
            })
        );
    }
    // Backoff: at least half the initial 20 ms, then half of 40 ms (jitter is 50–100 %).
    assert!(reqs[2].at - reqs[1].at >= Duration::from_millis(10));
    assert!(reqs[3].at - reqs[2].at >= Duration::from_millis(20));
    assert!(reqs.iter().all(|r| r.method != "DELETE"));
}

#[tokio::test]
async fn eviction_blocked_past_the_deadline_is_reported_not_bypassed() {
    let api = MockApi::start().await;
    api.on(
        "GET",
        pods_path(),
        200,
        list("PodList", vec![pod("llm", "ms-0", NODE, Some("0"))]),
    );
    let eviction = "/api/v1/namespaces/llm/pods/ms-0/eviction";
    for _ in 0..50 {
        api.on(
            "POST",
            eviction,
            429,
            status_body(429, "TooManyRequests", "pdb"),
        );
    }
    let mut c = config();
    c.eviction.deadline = Dur::millis(300);
    c.eviction.grace_period = Some(Dur::secs(30));
    let a = actions(&api, c);

    let report = a.evict_pods(&cause()).await.unwrap();
    assert_eq!(report.blocked, ["llm/ms-0"]);
    assert!(!report.complete());
    let reqs = api.requests();
    assert!(reqs.len() >= 3, "{:?}", api.lines());
    assert!(
        reqs.iter().all(|r| r.method != "DELETE"),
        "{:?}",
        api.lines()
    );
    assert_eq!(
        reqs[1].body["deleteOptions"],
        json!({ "gracePeriodSeconds": 30 })
    );
}

#[tokio::test]
async fn restart_deletes_only_the_pod_on_the_gpu() {
    let api = MockApi::start().await;
    api.on(
        "GET",
        pods_path(),
        200,
        list(
            "PodList",
            vec![
                pod("llm", "ms-a", NODE, Some("0,1")),
                pod("llm", "ms-b", NODE, Some("2")),
                pod("llm", "ms-c", NODE, None),
            ],
        ),
    );
    api.on(
        "DELETE",
        "/api/v1/namespaces/llm/pods/ms-a",
        200,
        pod("llm", "ms-a", NODE, Some("0,1")),
    );
    let a = actions(&api, config());
    let deleted = a.restart_pods(&[1], &cause()).await.unwrap();
    assert_eq!(deleted, ["llm/ms-a"]);
    let reqs = api.requests();
    assert_eq!(reqs.len(), 2, "{:?}", api.lines());
    assert_pod_list(&reqs[0]);
    assert_eq!(reqs[1].method, "DELETE");
    assert_eq!(reqs[1].path, "/api/v1/namespaces/llm/pods/ms-a");
    assert_eq!(reqs[1].content_type.as_deref(), Some(JSON));
    assert_eq!(reqs[1].body, json!({}));
}

#[tokio::test]
async fn host_requests_are_node_annotations() {
    let api = MockApi::start().await;
    let path = node_path();
    api.on("PATCH", &path, 200, node(NODE, "1", json!({}), json!({})));
    let mut booted = node(NODE, "1", json!({}), json!({}));
    booted["status"] = json!({ "nodeInfo": { "bootID": "boot-1", "machineID": "", "systemUUID": "",
        "kernelVersion": "", "osImage": "", "containerRuntimeVersion": "", "kubeletVersion": "",
        "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64" } });
    api.on("GET", &path, 200, booted);
    api.on("PATCH", &path, 200, node(NODE, "2", json!({}), json!({})));
    api.on("PATCH", &path, 200, node(NODE, "3", json!({}), json!({})));
    let a = actions(&api, config());
    a.request_host_action(&HostRequest::ResetGpu { gpus: vec![0, 1] }, &cause())
        .await
        .unwrap();
    a.request_host_action(&HostRequest::Reboot, &cause())
        .await
        .unwrap();
    a.clear_host_request(&cause()).await.unwrap();
    assert_eq!(
        api.lines(),
        [
            format!("PATCH {path}"),
            format!("GET {path}"),
            format!("PATCH {path}"),
            format!("PATCH {path}")
        ]
    );
    let reqs: Vec<Recorded> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    for r in &reqs {
        assert_write(r, "PATCH", &path, MERGE);
    }
    let annotations = |r: &Recorded| r.body["metadata"]["annotations"].clone();
    assert_eq!(
        annotations(&reqs[0])["infergate.io/requested-action"],
        "reset-gpu:0,1"
    );
    assert!(annotations(&reqs[0])["infergate.io/requested-at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(
        annotations(&reqs[0])["infergate.io/requested-boot-id"],
        Value::Null
    );
    assert_eq!(
        annotations(&reqs[1])["infergate.io/requested-action"],
        "reboot"
    );
    // The boot ID at the request: a new one after a restart means the reboot happened.
    assert_eq!(
        annotations(&reqs[1])["infergate.io/requested-boot-id"],
        "boot-1"
    );
    assert_eq!(
        reqs[2].body,
        json!({ "metadata": { "annotations": {
            "infergate.io/requested-action": null,
            "infergate.io/requested-at": null,
            "infergate.io/requested-boot-id": null
        } } })
    );
}

#[tokio::test]
async fn event_is_a_core_v1_event_about_the_node_in_default() {
    let api = MockApi::start().await;
    let path = "/api/v1/namespaces/default/events";
    api.on("POST", path, 201, json!({ "apiVersion": "v1", "kind": "Event", "metadata": { "name": "gpu-node-1.abc" }, "involvedObject": {} }));
    let a = actions(&api, config());
    a.record_event(&NodeEvent {
        kind: EventKind::Warning,
        reason: "RebootRequested".into(),
        action: "RequestReboot".into(),
        message: "requested reboot: GPU 0: XID 79".into(),
    })
    .await
    .unwrap();
    let r = &api.requests()[0];
    assert_write(r, "POST", path, JSON);
    let b = &r.body;
    assert_eq!(b["apiVersion"], "v1");
    assert_eq!(b["kind"], "Event");
    assert_eq!(
        b["metadata"],
        json!({ "generateName": "gpu-node-1.", "namespace": "default" })
    );
    assert_eq!(
        b["involvedObject"],
        json!({ "apiVersion": "v1", "kind": "Node", "name": NODE, "uid": NODE })
    );
    assert_eq!(b["type"], "Warning");
    assert_eq!(b["reason"], "RebootRequested");
    assert_eq!(b["action"], "RequestReboot");
    assert_eq!(b["message"], "requested reboot: GPU 0: XID 79");
    assert_eq!(
        b["source"],
        json!({ "component": "infergate-control", "host": NODE })
    );
    assert_eq!(b["reportingComponent"], "infergate-control");
    assert_eq!(b["reportingInstance"], NODE);
    assert_eq!(b["count"], 1);
    assert!(b["firstTimestamp"].is_string());
    assert_eq!(b["firstTimestamp"], b["lastTimestamp"]);
    // A legacy event (no eventTime): the API server then accepts namespace `default` for a
    // cluster-scoped involved object.
    assert!(b.get("eventTime").is_none());
}

#[tokio::test]
async fn node_state_reads_what_remediation_left_on_the_node() {
    let api = MockApi::start().await;
    let mut n = node(
        NODE,
        "1",
        json!({ "unschedulable": true, "taints": [{ "key": "infergate.io/gpu-unhealthy", "value": "3", "effect": "NoSchedule" }] }),
        json!({
            "infergate.io/cordoned-by": "infergate-control",
            "infergate.io/requested-action": "reboot",
            "infergate.io/requested-at": "2026-03-01T10:00:00Z",
            "infergate.io/requested-boot-id": "boot-1"
        }),
    );
    n["status"] = json!({
        "conditions": [
            { "type": "Ready", "status": "True" },
            { "type": "GpuHealthy", "status": "False" }
        ],
        "nodeInfo": { "bootID": "boot-2", "machineID": "", "systemUUID": "",
            "kernelVersion": "", "osImage": "", "containerRuntimeVersion": "", "kubeletVersion": "",
            "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64" }
    });
    api.on("GET", &node_path(), 200, n);
    let a = actions(&api, config());
    let s = a.node_state().await.unwrap();
    assert!(s.unschedulable && s.cordoned_by_us);
    assert_eq!(s.condition_healthy, Some(false));
    assert_eq!(s.taint_value.as_deref(), Some("3"));
    assert_eq!(s.requested_action.as_deref(), Some("reboot"));
    assert!(s.requested_at.is_some());
    assert_eq!(s.boot_id.as_deref(), Some("boot-2"));
    assert!(s.rebooted_since_request());
}

fn gpu_node(name: &str, healthy: Option<bool>) -> Value {
    let mut n = node(name, "1", json!({}), json!({}));
    let mut conditions = vec![json!({ "type": "Ready", "status": "True" })];
    if let Some(h) = healthy {
        conditions
            .push(json!({ "type": "GpuHealthy", "status": if h { "True" } else { "False" } }));
    }
    n["status"] = json!({ "conditions": conditions });
    n
}

#[tokio::test]
async fn fleet_health_lists_gpu_nodes_by_label_and_pages() {
    let api = MockApi::start().await;
    let mut page1 = list(
        "NodeList",
        vec![gpu_node("a", Some(true)), gpu_node("b", Some(false))],
    );
    page1["metadata"]["continue"] = json!("token-1");
    api.on("GET", "/api/v1/nodes", 200, page1);
    api.on(
        "GET",
        "/api/v1/nodes",
        200,
        list(
            "NodeList",
            vec![gpu_node("c", None), gpu_node("d", Some(false))],
        ),
    );
    let a = actions(&api, config());
    let h = a.fleet_health().await.unwrap().unwrap();
    assert_eq!((h.gpu_nodes, h.unhealthy), (4, 2));
    let reqs = api.requests();
    assert_eq!(
        reqs[0].query("labelSelector"),
        Some("nvidia.com/gpu.present=true")
    );
    assert_eq!(reqs[0].query("limit"), Some("500"));
    assert_eq!(reqs[0].query("continue"), None);
    assert_eq!(reqs[1].query("continue"), Some("token-1"));
}

fn lease(name: &str, rv: &str, holder: Option<&str>, renewed: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": { "name": name, "namespace": "infergate-system", "resourceVersion": rv },
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 60,
            "renewTime": renewed,
            "acquireTime": renewed,
            "leaseTransitions": 2
        }
    })
}

fn fresh() -> String {
    // A renewTime of now, in the API's MicroTime format.
    let now = k8s_openapi::jiff::Timestamp::now();
    serde_json::to_value(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        now,
    ))
    .unwrap()
    .as_str()
    .unwrap()
    .to_owned()
}

#[tokio::test]
async fn lease_acquire_skips_held_slots_and_creates_a_missing_one() {
    let api = MockApi::start().await;
    let l0 = format!("{LEASES}/infergate-remediation-0");
    let l1 = format!("{LEASES}/infergate-remediation-1");
    api.on(
        "GET",
        &l0,
        200,
        lease(
            "infergate-remediation-0",
            "10",
            Some("gpu-node-9"),
            &fresh(),
        ),
    );
    api.on(
        "GET",
        &l1,
        404,
        status_body(
            404,
            "NotFound",
            "leases \"infergate-remediation-1\" not found",
        ),
    );
    api.on(
        "POST",
        LEASES,
        201,
        lease("infergate-remediation-1", "11", Some(NODE), &fresh()),
    );
    let mut c = config();
    c.max_concurrent_nodes = 2;
    let a = actions(&api, c);
    let ticket = a.try_acquire().await.unwrap().unwrap();
    assert_eq!(ticket.slot, "infergate-remediation-1");
    assert_eq!(ticket.resource_version.as_deref(), Some("11"));
    let reqs = api.requests();
    assert_eq!(
        api.lines(),
        [
            format!("GET {l0}"),
            format!("GET {l1}"),
            format!("POST {LEASES}")
        ]
    );
    assert_write(&reqs[2], "POST", LEASES, JSON);
    let b = &reqs[2].body;
    assert_eq!(b["apiVersion"], "coordination.k8s.io/v1");
    assert_eq!(b["kind"], "Lease");
    assert_eq!(b["metadata"]["name"], "infergate-remediation-1");
    assert_eq!(b["spec"]["holderIdentity"], NODE);
    assert_eq!(b["spec"]["leaseDurationSeconds"], 60);
    assert!(b["spec"]["renewTime"].is_string());
}

#[tokio::test]
async fn lease_takeover_of_an_expired_slot_is_conditional_on_resource_version() {
    let api = MockApi::start().await;
    let l0 = format!("{LEASES}/infergate-remediation-0");
    let expired = "2020-01-01T00:00:00.000000Z";
    // K = 1: first try loses the race (409), second wins.
    api.on(
        "GET",
        &l0,
        200,
        lease("infergate-remediation-0", "20", Some("gpu-node-9"), expired),
    );
    api.on("PUT", &l0, 409, status_body(409, "Conflict", "modified"));
    api.on(
        "GET",
        &l0,
        200,
        lease("infergate-remediation-0", "21", None, expired),
    );
    api.on(
        "PUT",
        &l0,
        200,
        lease("infergate-remediation-0", "22", Some(NODE), &fresh()),
    );
    let a = actions(&api, config());
    assert_eq!(a.try_acquire().await.unwrap(), None);
    let ticket = a.try_acquire().await.unwrap().unwrap();
    assert_eq!(ticket.resource_version.as_deref(), Some("22"));
    let reqs = api.requests();
    for (r, rv, transitions) in [(&reqs[1], "20", 3), (&reqs[3], "21", 3)] {
        assert_write(r, "PUT", &l0, JSON);
        assert_eq!(r.body["metadata"]["resourceVersion"], rv);
        assert_eq!(r.body["spec"]["holderIdentity"], NODE);
        assert_eq!(r.body["spec"]["leaseTransitions"], transitions);
        assert_ne!(r.body["spec"]["renewTime"], expired);
    }
}

#[tokio::test]
async fn lease_renew_and_release() {
    let api = MockApi::start().await;
    let l0 = format!("{LEASES}/infergate-remediation-0");
    api.on(
        "GET",
        &l0,
        200,
        lease("infergate-remediation-0", "30", Some(NODE), &fresh()),
    );
    api.on(
        "PUT",
        &l0,
        200,
        lease("infergate-remediation-0", "31", Some(NODE), &fresh()),
    );
    // Lost meanwhile: renew says so.
    api.on(
        "GET",
        &l0,
        200,
        lease(
            "infergate-remediation-0",
            "32",
            Some("gpu-node-9"),
            &fresh(),
        ),
    );
    api.on(
        "GET",
        &l0,
        200,
        lease("infergate-remediation-0", "33", Some(NODE), &fresh()),
    );
    api.on(
        "PUT",
        &l0,
        200,
        lease("infergate-remediation-0", "34", None, &fresh()),
    );
    let a = actions(&api, config());
    let mut ticket = infergate_remediate::LockTicket {
        slot: "infergate-remediation-0".into(),
        resource_version: Some("30".into()),
    };
    assert!(a.renew(&mut ticket).await.unwrap());
    assert_eq!(ticket.resource_version.as_deref(), Some("31"));
    assert!(!a.renew(&mut ticket).await.unwrap());
    a.release(ticket).await.unwrap();
    let reqs = api.requests();
    assert_eq!(reqs[1].body["metadata"]["resourceVersion"], "30");
    assert_eq!(reqs[4].body["metadata"]["resourceVersion"], "33");
    assert!(reqs[4].body["spec"].get("holderIdentity").is_none());
    assert!(api.unused().is_empty(), "{:?}", api.unused());
}
