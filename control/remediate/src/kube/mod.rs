//! [`KubeActions`]: remediation through the Kubernetes API with kube-rs.
//!
//! Every call is listed in `docs/remediation.md` (method, path, patch type, body). In short:
//! the GPU condition is a strategic-merge patch of `nodes/{n}/status` that names only that
//! condition; taints are a read-modify-write of the node (a JSON merge patch carrying the
//! `resourceVersion` read, retried on 409); cordon and host requests are patches of the node;
//! evictions go through the Eviction API; leases are `coordination.k8s.io/v1` objects updated
//! with `resourceVersion` preconditions; events are `core/v1` Events in `default`.

mod lease;
mod pods;

use std::time::{Duration, SystemTime};

use http::header::{HeaderValue, AUTHORIZATION};
use k8s_openapi::api::core::v1::{Event, EventSource, Node, ObjectReference, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use crate::actions::{ActionError, BoxFuture, NodeActions};
use crate::config::RemediationConfig;
use crate::types::{
    Cause, Cordon, EvictionReport, FleetHealth, GpuCondition, HostRequest, NodeEvent, NodeState,
    NodeTaint,
};
use crate::{
    ANNOTATION_CORDONED_BY, ANNOTATION_REQUESTED_ACTION, ANNOTATION_REQUESTED_AT,
    ANNOTATION_REQUESTED_BOOT_ID,
};

/// `fieldManager` of every write, and the events' reporting component.
pub const FIELD_MANAGER: &str = "infergate-control";

/// Namespace of the node events. The API server accepts events about a cluster-scoped object
/// (a Node) only in `default` (legacy events without `eventTime`; see `docs/remediation.md`).
pub const EVENT_NAMESPACE: &str = "default";

/// Attempts of a read-modify-write before giving up on 409 Conflicts.
const CONFLICT_ATTEMPTS: u32 = 5;

/// Remediation through the Kubernetes API, for one node.
#[derive(Clone)]
pub struct KubeActions {
    client: Client,
    node: String,
    config: RemediationConfig,
}

impl KubeActions {
    /// From a client built by the caller. Note that kube's default client retries 429s by
    /// itself (up to 15 times, with its own backoff): prefer [`KubeActions::infer`], which turns
    /// that off so eviction retries follow `eviction.*` and its deadline.
    pub fn new(client: Client, node: impl Into<String>, config: RemediationConfig) -> Self {
        KubeActions {
            client,
            node: node.into(),
            config,
        }
    }

    /// From the environment (in-cluster service account, or `KUBECONFIG`), with kube's own
    /// retries off and a 30 s read timeout.
    pub async fn infer(
        node: impl Into<String>,
        config: RemediationConfig,
    ) -> Result<Self, ActionError> {
        let mut kc = kube::Config::infer()
            .await
            .map_err(|e| ActionError::Other(format!("kubernetes client config: {e}")))?;
        tune(&mut kc);
        Ok(Self::new(Client::try_from(kc)?, node, config))
    }

    /// From a base URL (`https://host:6443`, or `http://127.0.0.1:PORT` in tests) and an
    /// optional bearer token, with kube's own retries off.
    pub fn from_url(
        base_url: &str,
        token: Option<&str>,
        node: impl Into<String>,
        config: RemediationConfig,
    ) -> Result<Self, ActionError> {
        let uri: http::Uri = base_url
            .parse()
            .map_err(|e| ActionError::Other(format!("bad API server URL {base_url:?}: {e}")))?;
        let mut kc = kube::Config::new(uri);
        kc.default_namespace = config.namespace.clone();
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|e| ActionError::Other(format!("bad token: {e}")))?;
            value.set_sensitive(true);
            kc.headers.push((AUTHORIZATION, value));
        }
        tune(&mut kc);
        Ok(Self::new(Client::try_from(kc)?, node, config))
    }

    /// The node acted on.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    fn condition(&self, c: &GpuCondition) -> serde_json::Value {
        let now = serde_json::to_value(Time(Timestamp::now())).unwrap_or_default();
        let mut condition = json!({
            "type": self.config.condition_type,
            "status": if c.healthy { "True" } else { "False" },
            "reason": c.reason,
            "message": c.message,
            "lastHeartbeatTime": now,
        });
        if c.transition {
            condition["lastTransitionTime"] = now;
        }
        condition
    }

    /// Read-modify-write of the node's taint list. `edit` returns the new list, or `None` when
    /// nothing needs to change. The write is a JSON merge patch that carries the
    /// `resourceVersion` read, so the API server refuses it (409) if the node changed since;
    /// then the node is read again.
    async fn edit_taints(
        &self,
        what: &str,
        edit: impl Fn(&[Taint]) -> Option<Vec<Taint>>,
    ) -> Result<bool, ActionError> {
        let nodes = self.nodes();
        for attempt in 1..=CONFLICT_ATTEMPTS {
            let node = nodes.get(&self.node).await?;
            let current = node.spec.and_then(|s| s.taints).unwrap_or_default();
            let Some(taints) = edit(&current) else {
                return Ok(false);
            };
            let patch = json!({
                "metadata": { "resourceVersion": node.metadata.resource_version },
                "spec": { "taints": taints },
            });
            match nodes
                .patch(&self.node, &patch_params(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    tracing::debug!(node = %self.node, attempt, "{what}: conflict, reading the node again");
                    tokio::time::sleep(conflict_pause(attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ActionError::Conflict {
            what: what.into(),
            attempts: CONFLICT_ATTEMPTS,
        })
    }

    async fn patch_node(&self, patch: Patch<serde_json::Value>) -> Result<(), ActionError> {
        self.nodes()
            .patch(&self.node, &patch_params(), &patch)
            .await?;
        Ok(())
    }
}

fn tune(kc: &mut kube::Config) {
    kc.default_retry = false;
    kc.read_timeout = Some(Duration::from_secs(30));
}

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    }
}

/// A short, growing pause between conflicting writes (10, 20, 40 … ms).
fn conflict_pause(attempt: u32) -> Duration {
    Duration::from_millis(10u64 << attempt.min(6))
}

fn now_rfc3339() -> String {
    serde_json::to_value(Time(Timestamp::now()))
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn parse_time(s: &str) -> Option<SystemTime> {
    s.parse::<Timestamp>().ok().map(SystemTime::from)
}

impl NodeActions for KubeActions {
    fn node_state(&self) -> BoxFuture<'_, Result<NodeState, ActionError>> {
        Box::pin(async move {
            let node = self.nodes().get(&self.node).await?;
            let annotations = node.metadata.annotations.unwrap_or_default();
            let spec = node.spec.unwrap_or_default();
            let status = node.status.unwrap_or_default();
            let boot_id = status
                .node_info
                .as_ref()
                .map(|i| i.boot_id.clone())
                .filter(|b| !b.is_empty());
            let condition_healthy = status
                .conditions
                .unwrap_or_default()
                .into_iter()
                .find(|c| c.type_ == self.config.condition_type)
                .map(|c| c.status == "True");
            Ok(NodeState {
                unschedulable: spec.unschedulable.unwrap_or(false),
                cordoned_by_us: annotations.contains_key(ANNOTATION_CORDONED_BY),
                condition_healthy,
                taint_value: spec
                    .taints
                    .unwrap_or_default()
                    .into_iter()
                    .find(|t| t.key == self.config.taint_key)
                    .map(|t| t.value.unwrap_or_default()),
                requested_action: annotations.get(ANNOTATION_REQUESTED_ACTION).cloned(),
                requested_at: annotations
                    .get(ANNOTATION_REQUESTED_AT)
                    .and_then(|s| parse_time(s)),
                boot_id,
                requested_boot_id: annotations.get(ANNOTATION_REQUESTED_BOOT_ID).cloned(),
            })
        })
    }

    fn fleet_health(&self) -> BoxFuture<'_, Result<Option<FleetHealth>, ActionError>> {
        Box::pin(async move {
            let nodes = self.nodes();
            let mut health = FleetHealth::default();
            let mut params = ListParams::default()
                .labels(&self.config.gpu_node_selector)
                .limit(500);
            loop {
                let page = nodes.list(&params).await?;
                for node in &page.items {
                    health.gpu_nodes += 1;
                    let unhealthy = node
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| {
                            cs.iter().any(|c| {
                                c.type_ == self.config.condition_type && c.status == "False"
                            })
                        });
                    if unhealthy {
                        health.unhealthy += 1;
                    }
                }
                match page.metadata.continue_.filter(|c| !c.is_empty()) {
                    Some(token) => params = params.continue_token(&token),
                    None => break,
                }
            }
            Ok(Some(health))
        })
    }

    fn set_condition<'a>(
        &'a self,
        condition: &'a GpuCondition,
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            // NodeStatus.conditions has patchMergeKey `type`: a strategic-merge patch that
            // lists only our condition leaves the kubelet's conditions untouched.
            let patch = json!({
                "status": { "conditions": [self.condition(condition)] }
            });
            self.nodes()
                .patch_status(&self.node, &patch_params(), &Patch::Strategic(patch))
                .await?;
            Ok(())
        })
    }

    fn add_taint<'a>(
        &'a self,
        taint: &'a NodeTaint,
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<bool, ActionError>> {
        Box::pin(async move {
            let effect = taint.effect.as_str();
            self.edit_taints("add taint", |current| {
                let present = current.iter().any(|t| {
                    t.key == taint.key
                        && t.effect == effect
                        && t.value.as_deref() == Some(taint.value.as_str())
                });
                if present {
                    return None;
                }
                let mut taints: Vec<Taint> = current
                    .iter()
                    .filter(|t| !(t.key == taint.key && t.effect == effect))
                    .cloned()
                    .collect();
                taints.push(Taint {
                    key: taint.key.clone(),
                    value: Some(taint.value.clone()),
                    effect: effect.into(),
                    time_added: None,
                });
                Some(taints)
            })
            .await
        })
    }

    fn remove_taint<'a>(
        &'a self,
        key: &'a str,
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<bool, ActionError>> {
        Box::pin(async move {
            self.edit_taints("remove taint", |current| {
                if !current.iter().any(|t| t.key == key) {
                    return None;
                }
                Some(current.iter().filter(|t| t.key != key).cloned().collect())
            })
            .await
        })
    }

    fn cordon<'a>(&'a self, _cause: &'a Cause) -> BoxFuture<'a, Result<Cordon, ActionError>> {
        Box::pin(async move {
            let node = self.nodes().get(&self.node).await?;
            let ours = node
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(ANNOTATION_CORDONED_BY));
            if node.spec.and_then(|s| s.unschedulable).unwrap_or(false) {
                return Ok(if ours {
                    Cordon::AlreadyOurs
                } else {
                    Cordon::AlreadyCordoned
                });
            }
            // The annotation tells a restarted control process (after the reboot it asked
            // for) that this cordon is ours to undo.
            self.patch_node(Patch::Strategic(json!({
                "metadata": { "annotations": { ANNOTATION_CORDONED_BY: FIELD_MANAGER } },
                "spec": { "unschedulable": true },
            })))
            .await?;
            Ok(Cordon::Cordoned)
        })
    }

    fn uncordon<'a>(&'a self, _cause: &'a Cause) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            self.patch_node(Patch::Strategic(json!({
                "metadata": { "annotations": { ANNOTATION_CORDONED_BY: null } },
                "spec": { "unschedulable": false },
            })))
            .await
        })
    }

    fn evict_pods<'a>(
        &'a self,
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<EvictionReport, ActionError>> {
        Box::pin(self.evict_model_servers())
    }

    fn restart_pods<'a>(
        &'a self,
        gpus: &'a [u32],
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>> {
        Box::pin(self.delete_pods_on(gpus))
    }

    fn request_host_action<'a>(
        &'a self,
        request: &'a HostRequest,
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            // For a reboot, note the boot ID, so that after a restart we can tell whether the
            // reboot happened.
            let boot_id = match request {
                HostRequest::Reboot => self
                    .nodes()
                    .get(&self.node)
                    .await?
                    .status
                    .and_then(|s| s.node_info)
                    .map(|i| i.boot_id),
                HostRequest::ResetGpu { .. } => None,
            };
            self.patch_node(Patch::Merge(json!({
                "metadata": { "annotations": {
                    ANNOTATION_REQUESTED_ACTION: request.annotation_value(),
                    ANNOTATION_REQUESTED_AT: now_rfc3339(),
                    ANNOTATION_REQUESTED_BOOT_ID: boot_id,
                } }
            })))
            .await
        })
    }

    fn clear_host_request<'a>(
        &'a self,
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            self.patch_node(Patch::Merge(json!({
                "metadata": { "annotations": {
                    ANNOTATION_REQUESTED_ACTION: null,
                    ANNOTATION_REQUESTED_AT: null,
                    ANNOTATION_REQUESTED_BOOT_ID: null,
                } }
            })))
            .await
        })
    }

    fn record_event<'a>(&'a self, event: &'a NodeEvent) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            let now = Time(Timestamp::now());
            let body = Event {
                metadata: ObjectMeta {
                    generate_name: Some(format!("{}.", self.node)),
                    namespace: Some(EVENT_NAMESPACE.into()),
                    ..ObjectMeta::default()
                },
                involved_object: ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Node".into()),
                    name: Some(self.node.clone()),
                    // What the kubelet and node-problem-detector put here, so that
                    // `kubectl describe node` shows the event.
                    uid: Some(self.node.clone()),
                    ..ObjectReference::default()
                },
                type_: Some(event.kind.as_str().into()),
                reason: Some(event.reason.clone()),
                action: Some(event.action.clone()),
                message: Some(truncate(&event.message, 1024)),
                source: Some(EventSource {
                    component: Some(FIELD_MANAGER.into()),
                    host: Some(self.node.clone()),
                }),
                reporting_component: Some(FIELD_MANAGER.into()),
                reporting_instance: Some(self.node.clone()),
                first_timestamp: Some(now.clone()),
                last_timestamp: Some(now),
                count: Some(1),
                ..Event::default()
            };
            Api::<Event>::namespaced(self.client.clone(), EVENT_NAMESPACE)
                .create(&post_params(), &body)
                .await?;
            Ok(())
        })
    }
}

/// At most `max` bytes, cut at a character boundary.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}
