//! Endpoints and health feeds from the Kubernetes API.
//!
//! One supervisor task follows the live config: for each backend with `discovery.kubernetes`
//! and each `health_feeds[].kubernetes` entry it runs a watcher task, started when the entry
//! appears and stopped (its metric series removed) when it goes or changes. The client is made
//! once, from the in-cluster service account or `KUBECONFIG` (kube-rs `Config::infer`); until
//! it can be made, every source counts an error and it is tried again each second.
//!
//! While the API server cannot be reached, each source keeps its last known set and retries
//! (250 ms doubling to 5 s): `infergate_discovery_sync_age_seconds` grows and
//! `infergate_discovery_errors_total` counts, and the endpoints keep serving.

mod feeds;
mod follow;
mod pods;
mod set;
mod source;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use infergate_config::{Config, HealthFeed, KubernetesDiscovery};
use tokio::task::JoinHandle;

pub use follow::pool_spec;
pub use pods::endpoint;
use source::SourceState;

use crate::gateway::Gateway;

/// A task aborted when this is dropped.
pub struct Task(pub JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What one discovery source follows.
#[derive(Clone, PartialEq)]
enum Spec {
    Backend(KubernetesDiscovery),
    Feeds(HealthFeed),
}

struct Running {
    spec: Spec,
    state: Arc<SourceState>,
    /// `None` until a client could be made.
    task: Option<Task>,
}

/// The discovery sources of `cfg`, by source name (the backend's name, or `health_feeds[N]`).
fn wanted(cfg: &Config) -> Vec<(String, Spec)> {
    let backends = cfg.backends.iter().filter_map(|b| {
        let d = b.discovery.as_ref()?;
        Some((b.name.clone(), Spec::Backend(d.kubernetes.clone())))
    });
    let feeds = cfg
        .health_feeds
        .iter()
        .enumerate()
        .filter(|(_, f)| f.kubernetes.is_some())
        .map(|(i, f)| (format!("health_feeds[{i}]"), Spec::Feeds(f.clone())));
    backends.chain(feeds).collect()
}

/// Whether `cfg` takes endpoints from discovery.
pub fn discovers_endpoints(cfg: &Config) -> bool {
    cfg.backends.iter().any(|b| b.discovery.is_some())
}

/// Starts the supervisor: it runs until the returned task is aborted or the gateway's writer
/// stops. With no discovery in the config it only watches for a config that has some. The
/// receiver turns `true` once every discovered backend of the first config has applied its
/// first complete set of endpoints.
pub fn spawn(gw: Arc<Gateway>) -> (JoinHandle<()>, tokio::sync::watch::Receiver<bool>) {
    let (synced_tx, synced) = tokio::sync::watch::channel(false);
    (tokio::spawn(supervise(gw, synced_tx)), synced)
}

async fn supervise(gw: Arc<Gateway>, synced: tokio::sync::watch::Sender<bool>) {
    let mut changes = gw.changes();
    let mut client: Option<kube::Client> = None;
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut config = None;
    loop {
        let status = gw.status();
        if config
            .as_ref()
            .is_none_or(|c| !Arc::ptr_eq(c, &status.config))
        {
            config = Some(status.config.clone());
            let wanted = wanted(&status.config);
            running.retain(|name, r| {
                let keep = wanted.iter().any(|(n, s)| n == name && *s == r.spec);
                if !keep {
                    tracing::info!(source = %name, "discovery stopped");
                    gw.metrics().retire_discovery(name);
                }
                keep
            });
            for (name, spec) in wanted {
                if running.contains_key(&name) {
                    continue;
                }
                let state = Arc::new(SourceState::new(
                    name.clone(),
                    gw.metrics().discovery(&name),
                ));
                running.insert(
                    name,
                    Running {
                        spec,
                        state,
                        task: None,
                    },
                );
            }
        }
        if client.is_none() && running.values().any(|r| r.task.is_none()) {
            match kube::Client::try_default().await {
                Ok(c) => client = Some(c),
                Err(e) => {
                    for r in running.values() {
                        r.state.error(&format!("no Kubernetes client: {e}"));
                    }
                }
            }
        }
        if let Some(c) = &client {
            for r in running.values_mut().filter(|r| r.task.is_none()) {
                r.task = Some(start(c.clone(), &gw, &r.spec, r.state.clone()));
            }
        }
        if !*synced.borrow()
            && running
                .values()
                .all(|r| matches!(r.spec, Spec::Feeds(_)) || r.state.synced())
        {
            synced.send_replace(true);
        }
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tick.tick(), if !running.is_empty() => {
                for r in running.values() {
                    r.state.tick();
                }
            }
        }
    }
}

fn start(client: kube::Client, gw: &Arc<Gateway>, spec: &Spec, state: Arc<SourceState>) -> Task {
    tracing::info!(source = %state.name, "discovery started");
    let task = match spec {
        Spec::Backend(d) => {
            let target = follow::Target {
                backend: state.name.clone(),
                writer: gw.writer().clone(),
                state,
            };
            tokio::spawn(follow::backend(client, d.clone(), target))
        }
        Spec::Feeds(f) => tokio::spawn(feeds::follow(client, gw.clone(), f.clone(), state)),
    };
    Task(task)
}
