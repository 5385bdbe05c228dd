//! Releases in Kubernetes: exactly one control instance drives a release, the one holding the
//! Lease `infergate-release-NAME-0` (remediation's lease code, with the release's name as the
//! prefix and one slot), and transitions are posted as Events on the node, as remediation's.

use std::collections::HashMap;
use std::sync::Arc;

use infergate_release::engine::Transition;
use infergate_release::metrics::BoxFuture;
use infergate_remediate::{
    EventKind, KubeActions, LockTicket, NodeActions, NodeEvent, RemediationConfig, RemediationLock,
};
use tokio::time::Instant;

use super::configmaps::{object_name, ConfigMaps};
use super::runner::Driving;
use super::EventSink;

struct Held {
    actions: KubeActions,
    ticket: Option<LockTicket>,
    renewed: Instant,
}

/// Drives a release only while holding its Lease.
pub struct KubeDriving {
    node: String,
    config: RemediationConfig,
    held: tokio::sync::Mutex<HashMap<String, Held>>,
}

impl KubeDriving {
    pub fn new(node: String, config: RemediationConfig) -> Arc<KubeDriving> {
        Arc::new(KubeDriving {
            node,
            config,
            held: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    async fn hold_inner(&self, name: &str) -> bool {
        let mut held = self.held.lock().await;
        if !held.contains_key(name) {
            let mut config = self.config.clone();
            // The release's Lease is named after its objects: `infergate-release-NAME-0`.
            config.lease_prefix = object_name(name);
            config.max_concurrent_nodes = 1;
            match KubeActions::infer(self.node.clone(), config).await {
                Ok(actions) => {
                    held.insert(
                        name.to_owned(),
                        Held {
                            actions,
                            ticket: None,
                            renewed: Instant::now(),
                        },
                    );
                }
                Err(e) => {
                    tracing::warn!(release = %name, error = %e, "cannot reach the Kubernetes API for the release's Lease");
                    return false;
                }
            }
        }
        let Some(h) = held.get_mut(name) else {
            return false;
        };
        let duration = self.config.lease_duration.get();
        if let Some(ticket) = h.ticket.as_mut() {
            if h.renewed.elapsed() < duration / 3 {
                return true;
            }
            return match h.actions.renew(ticket).await {
                Ok(true) => {
                    h.renewed = Instant::now();
                    true
                }
                Ok(false) => {
                    tracing::warn!(release = %name, "the release's Lease was lost to another control instance");
                    h.ticket = None;
                    false
                }
                // Still ours until it expires.
                Err(e) => {
                    tracing::warn!(release = %name, error = %e, "cannot renew the release's Lease");
                    h.renewed.elapsed() < duration
                }
            };
        }
        match h.actions.try_acquire().await {
            Ok(Some(t)) => {
                tracing::info!(release = %name, lease = %t.slot, "took the release's Lease: this instance drives it");
                h.ticket = Some(t);
                h.renewed = Instant::now();
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(release = %name, error = %e, "cannot take the release's Lease");
                false
            }
        }
    }
}

impl Driving for KubeDriving {
    fn hold<'a>(&'a self, name: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(self.hold_inner(name))
    }

    fn release<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let h = self.held.lock().await.remove(name);
            if let Some(Held {
                actions,
                ticket: Some(t),
                ..
            }) = h
            {
                if let Err(e) = actions.release(t).await {
                    tracing::warn!(release = %name, error = %e, "cannot give the release's Lease back; it expires");
                }
            }
        })
    }
}

/// Posts transitions as Kubernetes Events on the node.
pub struct KubeEvents {
    pub actions: KubeActions,
}

impl EventSink for KubeEvents {
    fn post(&self, t: &Transition) {
        let event = NodeEvent {
            kind: if t.warning {
                EventKind::Warning
            } else {
                EventKind::Normal
            },
            reason: t.reason.to_owned(),
            action: "Release".into(),
            message: t.message.clone(),
        };
        let actions = self.actions.clone();
        tokio::spawn(async move {
            if let Err(e) = actions.record_event(&event).await {
                tracing::warn!(reason = %event.reason, error = %e, "cannot post the release event");
            }
        });
    }
}

/// What releases use in Kubernetes mode: Events on the node, and the ConfigMaps the
/// releases are kept in.
pub struct Cluster {
    pub events: Option<Arc<dyn EventSink>>,
    pub store: Arc<ConfigMaps>,
}

/// The cluster parts and the Leases of releases in Kubernetes mode
/// (`remediation.mode: kubernetes`); neither otherwise.
pub type ReleaseKube = (Option<Cluster>, Option<Arc<dyn Driving>>);

/// Builds the Kubernetes clients from the environment (in-cluster, or `KUBECONFIG`); the
/// ConfigMaps and Leases live in `remediation.namespace`.
pub async fn from_config(
    cfg: &crate::config::ControlConfig,
    node: &str,
) -> Result<ReleaseKube, String> {
    if cfg.remediation.mode != crate::config::Mode::Kubernetes {
        return Ok((None, None));
    }
    let rc = cfg.remediation.config.clone();
    let actions = KubeActions::infer(node.to_owned(), rc.clone())
        .await
        .map_err(|e| e.to_string())?;
    let store = ConfigMaps::infer(&rc.namespace).await?;
    let cluster = Cluster {
        events: Some(Arc::new(KubeEvents { actions })),
        store: Arc::new(store),
    };
    Ok((Some(cluster), Some(KubeDriving::new(node.to_owned(), rc))))
}
