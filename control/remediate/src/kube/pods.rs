//! Model-server pods: eviction (honouring PodDisruptionBudgets) and restart (delete).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::Eviction;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ObjectMeta};
use kube::api::{DeleteParams, ListParams};
use kube::Api;
use rand::Rng;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::params::post_params;
use super::KubeActions;
use crate::actions::ActionError;
use crate::config::EvictionConfig;
use crate::types::EvictionReport;

/// How one eviction ended.
enum Evicted {
    Done,
    /// Still refused (429) when the deadline came.
    Blocked(String),
    Failed(String),
}

impl KubeActions {
    /// The node's model-server pods that are still running (not terminating, not finished).
    async fn model_server_pods(&self) -> Result<Vec<Pod>, ActionError> {
        let api: Api<Pod> = match &self.config.pod_namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let params = ListParams::default()
            .labels(&self.config.model_server_selector)
            .fields(&format!("spec.nodeName={}", self.node));
        let pods = api.list(&params).await?;
        Ok(pods
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| {
                !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
            })
            .collect())
    }

    /// Evicts every model-server pod on the node, concurrently, each retried on 429 until
    /// `eviction.deadline`.
    pub(super) async fn evict_model_servers(&self) -> Result<EvictionReport, ActionError> {
        let pods = self.model_server_pods().await?;
        let deadline = Instant::now() + self.config.eviction.deadline.get();
        let mut tasks = JoinSet::new();
        for pod in pods {
            let (Some(name), Some(ns)) = (pod.metadata.name, pod.metadata.namespace) else {
                continue;
            };
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            let config = self.config.eviction.clone();
            tasks.spawn(async move {
                let outcome = evict_one(&api, &name, &ns, &config, deadline).await;
                (format!("{ns}/{name}"), outcome)
            });
        }
        let mut report = EvictionReport::default();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((pod, Evicted::Done)) => report.evicted.push(pod),
                Ok((pod, Evicted::Blocked(why))) => {
                    tracing::warn!(%pod, "eviction still refused at the deadline: {why}");
                    report.blocked.push(pod);
                }
                Ok((pod, Evicted::Failed(why))) => report.failed.push((pod, why)),
                Err(e) => report.failed.push(("?".into(), e.to_string())),
            }
        }
        report.evicted.sort();
        report.blocked.sort();
        report.failed.sort();
        Ok(report)
    }

    /// Deletes the running model-server pods whose GPU annotation names any of `gpus`.
    pub(super) async fn delete_pods_on(&self, gpus: &[u32]) -> Result<Vec<String>, ActionError> {
        let pods = self.model_server_pods().await?;
        let mut deleted = Vec::new();
        for pod in pods {
            let on_gpu = pod
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(&self.config.gpu_annotation))
                .is_some_and(|v| annotation_names_any(v, gpus));
            let (Some(name), Some(ns)) = (pod.metadata.name, pod.metadata.namespace) else {
                continue;
            };
            if !on_gpu {
                continue;
            }
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => deleted.push(format!("{ns}/{name}")),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(deleted)
    }
}

/// Whether a GPU annotation value (`"3"`, `"0,1"`, `"all"`) names any of `gpus`.
pub(super) fn annotation_names_any(value: &str, gpus: &[u32]) -> bool {
    let value = value.trim();
    if value == "all" || value == "*" {
        return true;
    }
    value
        .split(',')
        .filter_map(|g| g.trim().parse::<u32>().ok())
        .any(|g| gpus.contains(&g))
}

async fn evict_one(
    api: &Api<Pod>,
    name: &str,
    ns: &str,
    config: &EvictionConfig,
    deadline: Instant,
) -> Evicted {
    let body = Eviction {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..ObjectMeta::default()
        },
        delete_options: config.grace_period.map(|g| DeleteOptions {
            grace_period_seconds: Some(i64::try_from(g.get().as_secs()).unwrap_or(i64::MAX)),
            ..DeleteOptions::default()
        }),
    };
    let mut backoff = config.initial_backoff.get();
    loop {
        let result = api
            .create_subresource::<_, serde_json::Value>("eviction", name, &post_params(), &body)
            .await;
        let why = match result {
            Ok(_) => return Evicted::Done,
            // Already gone.
            Err(kube::Error::Api(s)) if s.code == 404 => return Evicted::Done,
            // 429: a PodDisruptionBudget allows no disruption now. 5xx and transport errors:
            // the API server is struggling. All are retried; none is ever turned into a delete.
            Err(kube::Error::Api(s)) if s.code == 429 || s.code >= 500 => {
                format!("{} {}", s.code, s.message)
            }
            Err(kube::Error::Api(s)) => {
                return Evicted::Failed(format!("{} {}", s.code, s.message))
            }
            Err(e @ (kube::Error::HyperError(_) | kube::Error::Service(_))) => e.to_string(),
            Err(e) => return Evicted::Failed(e.to_string()),
        };
        let wait = jitter(backoff);
        if Instant::now() + wait > deadline {
            return Evicted::Blocked(why);
        }
        tracing::info!(pod = %format!("{ns}/{name}"), ?wait, "eviction refused ({why}); retrying");
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(config.max_backoff.get());
    }
}

/// Between half and all of `d`, so that nodes do not retry in step.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.5..=1.0))
}
