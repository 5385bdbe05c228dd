//! `/version`, `/api`, `/api/v1`, `/apis` and the InferencePool group's resource list.

use serde_json::{json, Value};

use crate::kind::POOL_GROUP;

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

const VERBS: [&str; 3] = ["get", "list", "watch"];

pub(crate) fn core_resources() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "v1",
        "resources": [{"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": VERBS, "shortNames": ["po"]}],
    })
}

pub(crate) fn groups() -> Value {
    let gv = format!("{POOL_GROUP}/v1");
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [{
            "name": POOL_GROUP,
            "versions": [{"groupVersion": gv, "version": "v1"}],
            "preferredVersion": {"groupVersion": gv, "version": "v1"},
        }],
    })
}

pub(crate) fn pool_resources() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": format!("{POOL_GROUP}/v1"),
        "resources": [{
            "name": "inferencepools", "singularName": "inferencepool", "namespaced": true,
            "kind": "InferencePool", "verbs": VERBS, "shortNames": ["infpool"],
        }],
    })
}
