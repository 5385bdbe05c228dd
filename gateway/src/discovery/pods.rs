//! What a pod is as an endpoint: Ready and not terminating, at `http://<podIP>:<port>`, with
//! its labels plus `node` and `pod`.

use std::collections::BTreeMap;

use infergate_config::{Endpoint, PortRef};
use k8s_openapi::api::core::v1::Pod;

/// The endpoint pod `p` is now, or `None` when it must get no new request (not Ready,
/// terminating, no IP yet, or no container port of that name).
pub fn endpoint(p: &Pod, port: &PortRef, require_warm: bool) -> Option<Endpoint> {
    let meta = &p.metadata;
    if meta.deletion_timestamp.is_some() {
        return None;
    }
    let status = p.status.as_ref()?;
    let ready = status
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if !ready {
        return None;
    }
    let ip = status.pod_ip.as_deref().filter(|ip| !ip.is_empty())?;
    let port = match port {
        PortRef::Number(n) => i32::from(*n),
        PortRef::Name(name) => named_port(p, name)?,
    };
    let host = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_owned()
    };
    let name = meta.name.as_deref().unwrap_or_default();
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    let node = p
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default();
    let mut labels: BTreeMap<&str, &str> = meta
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let pod = format!("{namespace}/{name}");
    labels.insert("node", node);
    labels.insert("pod", &pod);
    Some(Endpoint {
        url: format!("http://{host}:{port}"),
        labels: labels.into_iter().collect(),
        require_warm,
    })
}

/// The number of the container port named `name`.
fn named_port(p: &Pod, name: &str) -> Option<i32> {
    p.spec
        .as_ref()?
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|cp| cp.name.as_deref() == Some(name))
        .map(|cp| cp.container_port)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pod(extra: serde_json::Value) -> Pod {
        let mut v = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "vllm-0", "namespace": "models", "labels": {"app": "vllm", "version": "v2"}},
            "spec": {"nodeName": "gpu-node-3", "containers": [{"name": "vllm", "ports": [{"name": "http", "containerPort": 8000}]}]},
            "status": {"podIP": "127.0.0.7", "conditions": [{"type": "Ready", "status": "True"}]}
        });
        merge(&mut v, extra);
        serde_json::from_value(v).unwrap()
    }

    fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
        match (a, b) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    #[test]
    fn a_ready_pod_is_an_endpoint_with_its_labels_node_and_name() {
        let e = endpoint(&pod(serde_json::json!({})), &PortRef::Number(8000), true).unwrap();
        assert_eq!(e.url, "http://127.0.0.7:8000");
        assert_eq!(e.labels.get("app"), Some("vllm"));
        assert_eq!(e.labels.get("version"), Some("v2"));
        assert_eq!(e.labels.get("node"), Some("gpu-node-3"));
        assert_eq!(e.labels.get("pod"), Some("models/vllm-0"));
        assert!(e.require_warm);
        let named = endpoint(
            &pod(serde_json::json!({})),
            &PortRef::Name("http".into()),
            false,
        );
        assert_eq!(named.unwrap().url, "http://127.0.0.7:8000");
    }

    #[test]
    fn not_ready_terminating_unplaced_or_portless_pods_are_not() {
        let port = PortRef::Number(8000);
        let not_ready = pod(
            serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
        );
        assert!(endpoint(&not_ready, &port, false).is_none());
        let terminating =
            pod(serde_json::json!({"metadata": {"deletionTimestamp": "2026-12-06T08:00:00Z"}}));
        assert!(endpoint(&terminating, &port, false).is_none());
        let no_ip = pod(serde_json::json!({"status": {"podIP": ""}}));
        assert!(endpoint(&no_ip, &port, false).is_none());
        let no_status: Pod =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "x"}})).unwrap();
        assert!(endpoint(&no_status, &port, false).is_none());
        let wrong_name = PortRef::Name("grpc".into());
        assert!(endpoint(&pod(serde_json::json!({})), &wrong_name, false).is_none());
    }

    #[test]
    fn an_ipv6_pod_is_bracketed() {
        let p = pod(serde_json::json!({"status": {"podIP": "::1"}}));
        assert_eq!(
            endpoint(&p, &PortRef::Number(8000), false).unwrap().url,
            "http://[::1]:8000"
        );
    }
}
