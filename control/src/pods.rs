//! Which pods hold which GPUs: polls the kubelet's PodResources API (`List`) and publishes the
//! containers that hold devices of the configured resources on the health feed. While the
//! socket cannot be read the last list stays published; each failed call is counted and a
//! change of state (failing, a new reason, recovered) is logged once.

use std::time::Duration;

use infergate_podresources::{Client, PodResources};
use prometheus::{IntCounter, IntGauge, Registry};

use crate::feed::{Feed, FeedPod, FeedPodGpu};

/// Metrics of the PodResources reader.
#[derive(Clone)]
pub struct PodMetrics {
    errors: IntCounter,
    pods: IntGauge,
}

impl PodMetrics {
    pub fn new(r: &Registry) -> prometheus::Result<Self> {
        let errors = IntCounter::new(
            "infergate_control_podresources_errors_total",
            "Failed PodResources List calls (socket missing, refused, timed out, bad answer).",
        )?;
        let pods = IntGauge::new(
            "infergate_control_podresources_pods",
            "Pods that hold a GPU in the last PodResources list read.",
        )?;
        r.register(Box::new(errors.clone()))?;
        r.register(Box::new(pods.clone()))?;
        Ok(PodMetrics { errors, pods })
    }
}

/// The containers of `pods` that hold devices of one of `resources`, with those devices'
/// IDs, sorted by namespace, pod and container (the kubelet's order is not stable).
pub fn to_feed(pods: &[PodResources], resources: &[String]) -> Vec<FeedPod> {
    let mut out = Vec::new();
    for p in pods {
        for c in &p.containers {
            let mut ids: Vec<&str> = c
                .devices
                .iter()
                .filter(|d| resources.contains(&d.resource_name))
                .flat_map(|d| d.device_ids.iter().map(String::as_str))
                .collect();
            if ids.is_empty() {
                continue;
            }
            ids.sort_unstable();
            ids.dedup();
            out.push(FeedPod {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                container: c.name.clone(),
                gpus: ids
                    .into_iter()
                    .map(|id| FeedPodGpu {
                        uuid: id.to_owned(),
                        index: None,
                    })
                    .collect(),
            });
        }
    }
    out.sort();
    out
}

/// Pods (not containers) in a feed list.
fn count_pods(list: &[FeedPod]) -> usize {
    let mut names: Vec<(&str, &str)> = list
        .iter()
        .map(|p| (p.namespace.as_str(), p.name.as_str()))
        .collect();
    names.dedup();
    names.len()
}

/// Polls `client` every `interval` until the task is aborted.
pub async fn run(
    client: Client,
    resources: Vec<String>,
    feed: Feed,
    metrics: PodMetrics,
    interval: Duration,
) {
    // The last outcome: None before the first call, else the error text or None when it read.
    let mut last: Option<Option<String>> = None;
    loop {
        match client.list().await {
            Ok(pods) => {
                let list = to_feed(&pods, &resources);
                metrics.pods.set(count_pods(&list) as i64);
                if last != Some(None) {
                    tracing::info!(
                        socket = %client.socket().display(),
                        pods = count_pods(&list),
                        "reading PodResources"
                    );
                    last = Some(None);
                }
                feed.publish_pods(list);
            }
            Err(e) => {
                metrics.errors.inc();
                let text = e.to_string();
                if last.as_ref().and_then(Option::as_deref) != Some(text.as_str()) {
                    tracing::warn!(error = %text, "cannot read PodResources; keeping the last list");
                    last = Some(Some(text));
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use infergate_podresources::fake::{gpu_pod, FakeServer};
    use infergate_podresources::{ContainerDevices, ContainerResources};

    #[test]
    fn only_containers_with_the_resources_are_kept_sorted() {
        let mut mixed = gpu_pod("models", "b", "vllm", &["GPU-2", "GPU-1", "GPU-2"]);
        mixed.containers.push(ContainerResources {
            name: "nic".into(),
            devices: vec![ContainerDevices {
                resource_name: "example.com/nic".into(),
                device_ids: vec!["eth1".into()],
            }],
        });
        let pods = vec![
            mixed,
            gpu_pod("models", "a", "vllm", &["MIG-x"]),
            PodResources {
                name: "cpu-only".into(),
                namespace: "default".into(),
                containers: vec![],
            },
        ];
        let list = to_feed(&pods, &["nvidia.com/gpu".into()]);
        let names: Vec<(&str, &str)> = list
            .iter()
            .map(|p| (p.name.as_str(), p.container.as_str()))
            .collect();
        assert_eq!(names, vec![("a", "vllm"), ("b", "vllm")]);
        let ids: Vec<&str> = list[1].gpus.iter().map(|g| g.uuid.as_str()).collect();
        assert_eq!(ids, vec!["GPU-1", "GPU-2"]);
        assert_eq!(count_pods(&list), 2);
        assert!(to_feed(&pods, &["amd.com/gpu".into()]).is_empty());
    }

    #[tokio::test]
    async fn the_loop_publishes_and_keeps_the_last_list_on_errors() {
        let dir =
            std::env::temp_dir().join(format!("infergate-control-pods-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = FakeServer::start(dir.join("kubelet.sock")).await.unwrap();
        fake.set_pods(vec![gpu_pod("models", "llama-0", "vllm", &["GPU-0"])]);
        let feed = Feed::new("node-a");
        let registry = Registry::new();
        let metrics = PodMetrics::new(&registry).unwrap();
        let task = tokio::spawn(run(
            Client::new(fake.path(), Duration::from_secs(2)),
            vec!["nvidia.com/gpu".into()],
            feed.clone(),
            metrics.clone(),
            Duration::from_millis(20),
        ));
        let doc = feed.wait_above(1, Duration::from_secs(5)).await;
        assert_eq!(doc.pods[0].name, "llama-0");
        assert_eq!(metrics.pods.get(), 1);
        fake.fail_with(14, "down");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while metrics.errors.get() < 2 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(metrics.errors.get() >= 2);
        assert_eq!(feed.current().pods, doc.pods, "the last list stays");
        assert_eq!(feed.current().version, doc.version);
        task.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
