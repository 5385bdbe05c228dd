//! `/version`, `/api`, `/api/v1`, `/apis` and the resource lists of the groups served.

use serde_json::{json, Value};

use crate::kind::{COORDINATION_GROUP, POOL_GROUP};

pub(crate) fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-fake", "gitCommit": "",
        "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24",
        "compiler": "gc", "platform": "linux/amd64",
    })
}

pub(crate) fn core_versions(server: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}],
    })
}

const READ: [&str; 3] = ["get", "list", "watch"];
const READ_WRITE: [&str; 6] = ["create", "delete", "get", "list", "update", "watch"];

pub(crate) fn core_resources() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "v1",
        "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": READ, "shortNames": ["po"]},
            {"name": "configmaps", "singularName": "configmap", "namespaced": true, "kind": "ConfigMap", "verbs": READ_WRITE, "shortNames": ["cm"]},
            {"name": "events", "singularName": "event", "namespaced": true, "kind": "Event", "verbs": READ_WRITE, "shortNames": ["ev"]},
        ],
    })
}

pub(crate) fn groups() -> Value {
    let group = |name: &str| {
        let gv = format!("{name}/v1");
        json!({
            "name": name,
            "versions": [{"groupVersion": gv, "version": "v1"}],
            "preferredVersion": {"groupVersion": gv, "version": "v1"},
        })
    };
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [group(POOL_GROUP), group(COORDINATION_GROUP)],
    })
}

/// The resources of a served group (`/apis/{group}/v1`).
pub(crate) fn group_resources(group: &str) -> Value {
    let resource = if group == COORDINATION_GROUP {
        json!({
            "name": "leases", "singularName": "lease", "namespaced": true,
            "kind": "Lease", "verbs": READ_WRITE,
        })
    } else {
        json!({
            "name": "inferencepools", "singularName": "inferencepool", "namespaced": true,
            "kind": "InferencePool", "verbs": READ, "shortNames": ["infpool"],
        })
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": format!("{group}/v1"),
        "resources": [resource],
    })
}
