//! A Pod as a test describes it, and the core/v1 JSON the fake serves for it.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// A pod to put into the fake with [`crate::FakeKube::apply_pod`].
///
/// Defaults: Running and Ready, no node, no IP, no ports, one container named `main`.
/// A pod without an IP is served with phase `Pending` unless [`FakePod::phase`] says otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakePod {
    pub(crate) namespace: String,
    pub(crate) name: String,
    labels: BTreeMap<String, String>,
    node: Option<String>,
    ip: Option<String>,
    host_ip: Option<String>,
    ready: bool,
    phase: Option<String>,
    ports: Vec<(Option<String>, u16)>,
}

impl FakePod {
    /// A ready pod `namespace/name` with no labels, node, IP or ports.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        FakePod {
            namespace: namespace.into(),
            name: name.into(),
            labels: BTreeMap::new(),
            node: None,
            ip: None,
            host_ip: None,
            ready: true,
            phase: None,
            ports: Vec::new(),
        }
    }

    /// Adds the label `key=value`.
    #[must_use]
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The node the pod is scheduled on (`spec.nodeName`).
    #[must_use]
    pub fn node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }

    /// The pod's IP (`status.podIP`, `status.podIPs`).
    #[must_use]
    pub fn ip(mut self, ip: impl Into<String>) -> Self {
        self.ip = Some(ip.into());
        self
    }

    /// The node's IP (`status.hostIP`).
    #[must_use]
    pub fn host_ip(mut self, ip: impl Into<String>) -> Self {
        self.host_ip = Some(ip.into());
        self
    }

    /// Whether the Ready and ContainersReady conditions are True.
    #[must_use]
    pub fn ready(mut self, ready: bool) -> Self {
        self.ready = ready;
        self
    }

    /// `status.phase` (`Pending`, `Running`, `Succeeded`, `Failed`).
    #[must_use]
    pub fn phase(mut self, phase: impl Into<String>) -> Self {
        self.phase = Some(phase.into());
        self
    }

    /// A container port without a name.
    #[must_use]
    pub fn port(mut self, number: u16) -> Self {
        self.ports.push((None, number));
        self
    }

    /// A named container port (`spec.containers[0].ports[].name`).
    #[must_use]
    pub fn named_port(mut self, name: impl Into<String>, number: u16) -> Self {
        self.ports.push((Some(name.into()), number));
        self
    }

    /// The Pod JSON; `created` is the creationTimestamp, also used as the conditions'
    /// lastTransitionTime.
    pub(crate) fn to_json(&self, created: &str) -> Value {
        let phase = match (&self.phase, &self.ip) {
            (Some(p), _) => p.clone(),
            (None, Some(_)) => "Running".to_owned(),
            (None, None) => "Pending".to_owned(),
        };
        let ports: Vec<Value> = self
            .ports
            .iter()
            .map(|(name, number)| {
                let mut port = json!({"containerPort": number, "protocol": "TCP"});
                if let (Some(name), Some(obj)) = (name, port.as_object_mut()) {
                    obj.insert("name".into(), Value::String(name.clone()));
                }
                port
            })
            .collect();
        let ready = if self.ready { "True" } else { "False" };
        let scheduled = if self.node.is_some() { "True" } else { "False" };
        let mut spec = json!({
            "containers": [{"name": "main", "image": "registry.example/model-server:latest", "ports": ports}],
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
        });
        let mut status = json!({
            "phase": phase,
            "conditions": [
                {"type": "PodScheduled", "status": scheduled, "lastTransitionTime": created},
                {"type": "Initialized", "status": "True", "lastTransitionTime": created},
                {"type": "ContainersReady", "status": ready, "lastTransitionTime": created},
                {"type": "Ready", "status": ready, "lastTransitionTime": created},
            ],
            "containerStatuses": [{
                "name": "main", "ready": self.ready, "restartCount": 0, "started": true,
                "image": "registry.example/model-server:latest", "imageID": "",
                "state": {"running": {"startedAt": created}},
            }],
            "qosClass": "BestEffort",
        });
        if let (Some(node), Some(spec)) = (&self.node, spec.as_object_mut()) {
            spec.insert("nodeName".into(), Value::String(node.clone()));
        }
        if let Some(status) = status.as_object_mut() {
            if let Some(ip) = &self.ip {
                status.insert("podIP".into(), Value::String(ip.clone()));
                status.insert("podIPs".into(), json!([{"ip": ip}]));
            }
            if let Some(ip) = &self.host_ip {
                status.insert("hostIP".into(), Value::String(ip.clone()));
                status.insert("hostIPs".into(), json!([{"ip": ip}]));
            }
            status.insert("startTime".into(), Value::String(created.to_owned()));
        }
        let labels: Map<String, Value> = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": labels},
            "spec": spec,
            "status": status,
        })
    }
}

/// Sets the Ready and ContainersReady conditions and the containers' `ready`.
pub(crate) fn set_ready(pod: &mut Value, ready: bool, now: &str) {
    let wanted = if ready { "True" } else { "False" };
    if let Some(conditions) = pod
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    {
        for cond in conditions.iter_mut() {
            let is_ready = matches!(
                cond.get("type").and_then(Value::as_str),
                Some("Ready" | "ContainersReady")
            );
            if is_ready && cond.get("status").and_then(Value::as_str) != Some(wanted) {
                cond["status"] = Value::String(wanted.to_owned());
                cond["lastTransitionTime"] = Value::String(now.to_owned());
            }
        }
    }
    if let Some(statuses) = pod
        .pointer_mut("/status/containerStatuses")
        .and_then(Value::as_array_mut)
    {
        for status in statuses.iter_mut() {
            status["ready"] = Value::Bool(ready);
        }
    }
}

/// Marks the pod as being deleted (`metadata.deletionTimestamp`), as a graceful delete does.
pub(crate) fn set_terminating(pod: &mut Value, now: &str) {
    if let Some(meta) = pod.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.entry("deletionTimestamp")
            .or_insert_with(|| Value::String(now.to_owned()));
        meta.entry("deletionGracePeriodSeconds")
            .or_insert_with(|| Value::from(30));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pod_json_carries_what_discovery_reads() {
        let pod = FakePod::new("models", "llama-0")
            .label("app", "vllm")
            .node("gpu-node-1")
            .ip("10.0.0.7")
            .named_port("http", 8000)
            .port(9000)
            .ready(false)
            .to_json("2025-01-01T00:00:00Z");
        assert_eq!(pod["metadata"]["labels"]["app"], "vllm");
        assert_eq!(pod["spec"]["nodeName"], "gpu-node-1");
        assert_eq!(pod["status"]["podIP"], "10.0.0.7");
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(pod["spec"]["containers"][0]["ports"][0]["name"], "http");
        assert_eq!(
            pod["spec"]["containers"][0]["ports"][1]["containerPort"],
            9000
        );
        assert!(pod["spec"]["containers"][0]["ports"][1]
            .get("name")
            .is_none());
        assert_eq!(pod["status"]["conditions"][3]["type"], "Ready");
        assert_eq!(pod["status"]["conditions"][3]["status"], "False");
        let mut pod = pod;
        set_ready(&mut pod, true, "later");
        assert_eq!(pod["status"]["conditions"][3]["status"], "True");
        assert_eq!(
            pod["status"]["conditions"][3]["lastTransitionTime"],
            "later"
        );
        assert_eq!(pod["status"]["containerStatuses"][0]["ready"], true);
        set_terminating(&mut pod, "now");
        assert_eq!(pod["metadata"]["deletionTimestamp"], "now");
    }

    #[test]
    fn pod_without_ip_is_pending() {
        let pod = FakePod::new("ns", "p").to_json("t");
        assert_eq!(pod["status"]["phase"], "Pending");
        assert!(pod["status"].get("podIP").is_none());
        assert!(pod["spec"].get("nodeName").is_none());
    }
}
