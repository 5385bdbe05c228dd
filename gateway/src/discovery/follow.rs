//! Following a backend's pods: a kube-rs watcher (list, then watch from the list's resource
//! version, bookmarks, a new list after 410 Gone, retries with [`Retry`]) keeps the set of
//! pods, and every change of the endpoint set goes to the writer as one `apply_endpoints`.
//! A backend on an InferencePool follows the pool too: when its selector or port changes, the
//! pod watch starts again with the new ones.

use std::collections::BTreeMap;
use std::sync::Arc;

use infergate_config::{Endpoint, KubernetesDiscovery, PortRef};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};

use super::pods::endpoint;
use super::set::{self, PodSet};
use super::source::SourceState;
use super::Task;
use crate::writer::WriterHandle;

/// Where a backend's endpoints go.
#[derive(Clone)]
pub struct Target {
    pub backend: String,
    pub writer: WriterHandle,
    pub state: Arc<SourceState>,
}

impl Target {
    async fn apply(&self, endpoints: Vec<Endpoint>) {
        let n = endpoints.len();
        match self.writer.apply_endpoints(&self.backend, endpoints).await {
            Ok(_) => self.state.objects(n),
            Err(e) => {
                tracing::warn!(backend = %self.backend, error = %e, "discovered endpoints refused")
            }
        }
    }
}

/// Follows the backend's pods (or its InferencePool) until the task is aborted.
pub async fn backend(client: Client, spec: KubernetesDiscovery, target: Target) {
    match (&spec.inference_pool, &spec.namespace, &spec.port) {
        (Some(pool), _, _) => {
            follow_pool(
                client,
                &pool.namespace,
                &pool.name,
                spec.require_warm,
                target,
            )
            .await
        }
        (None, Some(ns), Some(port)) => {
            let selector = infergate_config::selector_text(&spec.selector);
            pods(client, ns, &selector, port, spec.require_warm, &target).await
        }
        // Validation requires namespace and port without a pool.
        _ => {}
    }
}

/// Follows the pods chosen by `selector` in `ns`; never returns.
async fn pods(
    client: Client,
    ns: &str,
    selector: &str,
    port: &PortRef,
    require_warm: bool,
    target: &Target,
) {
    let api: Api<Pod> = Api::namespaced(client, ns);
    let mut events = set::watch(api, watcher::Config::default().labels(selector));
    // By pod name: its endpoint while it should take traffic.
    let mut pods: PodSet<Endpoint> = PodSet::default();
    let mut applied: Option<Vec<Endpoint>> = None;
    while let Some(event) = set::next(&mut events, &target.state).await {
        if !pods.apply(event, |p| endpoint(p, port, require_warm)) {
            continue;
        }
        let now: Vec<Endpoint> = pods.live().values().cloned().collect();
        if applied.as_ref() != Some(&now) {
            applied = Some(now.clone());
            target.apply(now).await;
        }
    }
}

/// The `inference.networking.k8s.io/v1` InferencePool resource.
fn pool_resource() -> ApiResource {
    ApiResource {
        group: "inference.networking.k8s.io".into(),
        version: "v1".into(),
        api_version: "inference.networking.k8s.io/v1".into(),
        kind: "InferencePool".into(),
        plural: "inferencepools".into(),
    }
}

/// What a backend takes from its pool: `spec.selector.matchLabels` and
/// `spec.targetPorts[0].number`. `None` when the pool has no usable selector or port.
pub fn pool_spec(pool: &DynamicObject) -> Option<(String, PortRef)> {
    let spec = pool.data.get("spec")?;
    let labels = spec.get("selector")?.get("matchLabels")?.as_object()?;
    let selector: BTreeMap<String, String> = labels
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect();
    if selector.is_empty() || selector.len() != labels.len() {
        return None;
    }
    let port = spec.get("targetPorts")?.get(0)?.get("number")?.as_u64()?;
    let port = u16::try_from(port).ok().filter(|p| *p > 0)?;
    Some((
        infergate_config::selector_text(&selector),
        PortRef::Number(port),
    ))
}

/// Follows InferencePool `ns/name`, and the pods its current spec chooses.
async fn follow_pool(client: Client, ns: &str, name: &str, require_warm: bool, target: Target) {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &pool_resource());
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = set::watch(api, config);
    let mut current: Option<(String, PortRef)> = None;
    let mut seen_in_list = false;
    let mut pod_task: Option<Task> = None;
    while let Some(event) = set::next(&mut events, &target.state).await {
        let wanted = match event {
            Event::Init => {
                seen_in_list = false;
                continue;
            }
            Event::InitApply(p) => {
                seen_in_list = true;
                pool_spec(&p)
            }
            Event::InitDone if seen_in_list => continue,
            Event::InitDone | Event::Delete(_) => None,
            Event::Apply(p) => pool_spec(&p),
        };
        if wanted == current {
            continue;
        }
        drop(pod_task.take());
        match &wanted {
            Some((selector, port)) => {
                tracing::info!(backend = %target.backend, pool = %format!("{ns}/{name}"), %selector, ?port, "following the InferencePool's pods");
                let (client, ns, selector, port, target) = (
                    client.clone(),
                    ns.to_owned(),
                    selector.clone(),
                    port.clone(),
                    target.clone(),
                );
                pod_task = Some(Task(tokio::spawn(async move {
                    pods(client, &ns, &selector, &port, require_warm, &target).await
                })));
            }
            None => {
                tracing::warn!(backend = %target.backend, pool = %format!("{ns}/{name}"), "InferencePool missing or without selector and target port: no endpoints");
                target.apply(Vec::new()).await;
            }
        }
        current = wanted;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pool(spec: serde_json::Value) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
            "metadata": {"name": "qwen", "namespace": "models"},
            "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn a_pool_gives_its_selector_and_first_target_port() {
        let p = pool(serde_json::json!({
            "selector": {"matchLabels": {"model": "qwen", "app": "vllm"}},
            "targetPorts": [{"number": 8000}],
            "endpointPickerRef": {"name": "epp"}
        }));
        assert_eq!(
            pool_spec(&p),
            Some(("app=vllm,model=qwen".into(), PortRef::Number(8000)))
        );
    }

    #[test]
    fn a_pool_without_selector_or_port_gives_nothing() {
        for spec in [
            serde_json::json!({"targetPorts": [{"number": 8000}]}),
            serde_json::json!({"selector": {"matchLabels": {}}, "targetPorts": [{"number": 8000}]}),
            serde_json::json!({"selector": {"matchLabels": {"a": "b"}}, "targetPorts": []}),
            serde_json::json!({"selector": {"matchLabels": {"a": "b"}}, "targetPorts": [{"number": 70000}]}),
            serde_json::json!({"selector": {"matchLabels": {"a": 1}}, "targetPorts": [{"number": 80}]}),
        ] {
            assert_eq!(pool_spec(&pool(spec.clone())), None, "{spec}");
        }
    }
}
