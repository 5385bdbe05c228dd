//! [`KubeActions`]: remediation through the Kubernetes API with kube-rs.
//!
//! Every call is listed in `docs/remediation.md` (method, path, patch type, body). In short:
//! the GPU condition is a strategic-merge patch of `nodes/{n}/status` that names only that
//! condition; taints are a read-modify-write of the node (a JSON merge patch carrying the
//! `resourceVersion` read, retried on 409); cordon and host requests are patches of the node;
//! evictions go through the Eviction API; leases are `coordination.k8s.io/v1` objects updated
//! with `resourceVersion` preconditions; events are `core/v1` Events in `default`.

mod lease;
mod node_actions;
mod params;
mod pods;

use http::header::{HeaderValue, AUTHORIZATION};
use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::Patch;
use kube::{Api, Client};
use serde_json::json;

use crate::actions::ActionError;
use params::{conflict_pause, patch_params, tune};

use crate::config::RemediationConfig;
use crate::types::GpuCondition;
pub use params::FIELD_MANAGER;

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
