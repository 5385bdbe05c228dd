//! The health feed: `GET /v1/health` serves the node's GPU states with a version that grows on
//! every change; `?since=V&wait=30s` waits (long-poll) until the version is above `V` or the
//! wait ends, then answers with the current document either way. The document is
//! [`infergate_wire::feed::FeedDoc`], the type the gateway reads it with.

use std::sync::Arc;
use std::time::Duration;

use infergate_gpu::health::{GpuState, Severity};
pub use infergate_wire::feed::{
    FeedDoc, FeedGpu, FeedModel, FeedPod, FeedPodGpu, FeedRelease, GpuHealth,
};
use tokio::sync::watch;

/// The one writer of the feed, and its readers.
#[derive(Clone)]
pub struct Feed {
    tx: Arc<watch::Sender<FeedDoc>>,
}

impl Feed {
    pub fn new(node: &str) -> Self {
        let (tx, _) = watch::channel(FeedDoc {
            version: 1,
            node: node.to_owned(),
            ..FeedDoc::default()
        });
        Feed { tx: Arc::new(tx) }
    }

    pub fn current(&self) -> FeedDoc {
        self.tx.borrow().clone()
    }

    /// Publishes new GPU states; the version moves only when something other than the reading
    /// time changed.
    pub fn publish_gpus(&self, gpus: Vec<GpuState>, read_at_ms: u64) {
        let gpus: Vec<FeedGpu> = gpus.into_iter().map(to_feed).collect();
        self.tx.send_if_modified(|doc| {
            let changed = doc.gpus.len() != gpus.len()
                || doc.gpus.iter().zip(&gpus).any(|(a, b)| {
                    (a.index, &a.uuid, a.state, &a.reasons)
                        != (b.index, &b.uuid, b.state, &b.reasons)
                });
            doc.read_at_ms = read_at_ms;
            doc.gpus = gpus;
            // New GPU UUIDs can resolve (or unresolve) the indexes of the pods' GPUs.
            let changed = fill_indexes(&mut doc.pods, &doc.gpus) || changed;
            if changed {
                doc.version += 1;
            }
            changed
        });
    }

    /// Publishes the warm state of model caches.
    pub fn publish_models(&self, models: Vec<FeedModel>) {
        self.tx.send_if_modified(|doc| {
            if doc.models == models {
                return false;
            }
            doc.models = models;
            doc.version += 1;
            true
        });
    }

    /// Publishes the releases' weights (sorted by name); the version moves only on a change.
    pub fn publish_releases(&self, mut releases: Vec<FeedRelease>) {
        releases.sort_by(|a, b| a.name.cmp(&b.name));
        self.tx.send_if_modified(|doc| {
            if doc.releases == releases {
                return false;
            }
            doc.releases = releases;
            doc.version += 1;
            true
        });
    }

    /// Publishes which pods hold which GPUs; each GPU's index is filled from the UUIDs the GPUs
    /// reported.
    pub fn publish_pods(&self, mut pods: Vec<FeedPod>) {
        self.tx.send_if_modified(|doc| {
            fill_indexes(&mut pods, &doc.gpus);
            if doc.pods == pods {
                return false;
            }
            doc.pods = pods;
            doc.version += 1;
            true
        });
    }

    /// The document once its version is above `since`, or the current one after `wait`.
    pub async fn wait_above(&self, since: u64, wait: Duration) -> FeedDoc {
        let mut rx = self.tx.subscribe();
        let _ = tokio::time::timeout(wait, rx.wait_for(|d| d.version > since)).await;
        let doc = rx.borrow().clone();
        doc
    }
}

/// A GPU's state as the feed writes it.
fn to_feed(g: GpuState) -> FeedGpu {
    FeedGpu {
        index: g.index,
        uuid: g.uuid,
        state: match g.state {
            Severity::Healthy => GpuHealth::Healthy,
            Severity::Degraded => GpuHealth::Degraded,
            Severity::Unhealthy => GpuHealth::Unhealthy,
        },
        reasons: g.reasons,
        read_at_ms: g.read_at_ms,
    }
}

/// Sets the index of every pod's GPU from `gpus`; true when an index changed.
fn fill_indexes(pods: &mut [FeedPod], gpus: &[FeedGpu]) -> bool {
    let mut changed = false;
    for g in pods.iter_mut().flat_map(|p| p.gpus.iter_mut()) {
        let index = gpu_index(&g.uuid, gpus);
        changed |= g.index != index;
        g.index = index;
    }
    changed
}

/// The index of the GPU a device plugin's device ID names: a GPU UUID (`GPU-...`), a MIG
/// device of the old form `MIG-GPU-<uuid>/<gi>/<ci>` (its parent GPU), or a plain index (the
/// plugin's `index` ID strategy). `None` for a MIG UUID (`MIG-<uuid>`) or an ID no GPU has.
pub fn gpu_index(id: &str, gpus: &[FeedGpu]) -> Option<u32> {
    let by_uuid = |uuid: &str| gpus.iter().find(|g| g.uuid == uuid).map(|g| g.index);
    if let Some(parent) = id.strip_prefix("MIG-").filter(|r| r.starts_with("GPU-")) {
        return by_uuid(parent.split('/').next().unwrap_or(parent));
    }
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        let n: u32 = id.parse().ok()?;
        return gpus.iter().find(|g| g.index == n).map(|g| g.index);
    }
    by_uuid(id).filter(|_| !id.is_empty())
}

/// Parses `since` and `wait` from a query string; `wait` is capped at 60 s.
pub fn parse_query(query: Option<&str>) -> (u64, Duration) {
    let mut since = 0;
    let mut wait = Duration::ZERO;
    for pair in query.unwrap_or("").split('&') {
        match pair.split_once('=') {
            Some(("since", v)) => since = v.parse().unwrap_or(0),
            Some(("wait", v)) => {
                wait = infergate_config::units::parse_duration(v)
                    .unwrap_or(Duration::ZERO)
                    .min(Duration::from_secs(60));
            }
            _ => {}
        }
    }
    (since, wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(index: u32, state: Severity) -> GpuState {
        GpuState {
            index,
            uuid: format!("GPU-{index}"),
            state,
            reasons: Vec::new(),
            read_at_ms: 0,
        }
    }

    #[tokio::test]
    async fn version_moves_only_on_change_and_long_poll_wakes() {
        let feed = Feed::new("node-a");
        feed.publish_gpus(vec![gpu(0, Severity::Healthy)], 1);
        let v = feed.current().version;
        feed.publish_gpus(vec![gpu(0, Severity::Healthy)], 2);
        assert_eq!(
            feed.current().version,
            v,
            "a new reading time alone is no change"
        );
        assert_eq!(feed.current().read_at_ms, 2);
        let waiter = {
            let feed = feed.clone();
            tokio::spawn(async move { feed.wait_above(v, Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        feed.publish_gpus(vec![gpu(0, Severity::Unhealthy)], 3);
        let doc = tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(doc.version, v + 1);
        assert_eq!(doc.gpus[0].state, GpuHealth::Unhealthy);
        // Nothing newer: answers after the wait with the current document.
        let started = tokio::time::Instant::now();
        let same = feed.wait_above(v + 1, Duration::from_millis(100)).await;
        assert_eq!(same.version, v + 1);
        assert!(started.elapsed() >= Duration::from_millis(90));
    }

    #[test]
    fn served_document() {
        let feed = Feed::new("node-a");
        let mut bad = gpu(1, Severity::Unhealthy);
        bad.reasons = vec!["XID 79".into()];
        feed.publish_gpus(vec![gpu(0, Severity::Healthy), bad], 5);
        feed.publish_models(vec![FeedModel {
            name: "llama".into(),
            version: "v1".into(),
            state: "warm".into(),
        }]);
        assert_eq!(
            serde_json::to_string(&feed.current()).unwrap(),
            concat!(
                r#"{"version":3,"node":"node-a","read_at_ms":5,"gpus":["#,
                r#"{"index":0,"uuid":"GPU-0","state":"healthy","reasons":[],"read_at_ms":0},"#,
                r#"{"index":1,"uuid":"GPU-1","state":"unhealthy","reasons":["XID 79"],"read_at_ms":0}],"#,
                r#""models":[{"name":"llama","version":"v1","state":"warm"}]}"#
            )
        );
    }

    fn pod(name: &str, ids: &[&str]) -> FeedPod {
        FeedPod {
            namespace: "models".into(),
            name: name.into(),
            container: "vllm".into(),
            gpus: ids
                .iter()
                .map(|u| FeedPodGpu {
                    uuid: (*u).into(),
                    index: None,
                })
                .collect(),
        }
    }

    #[test]
    fn pods_get_gpu_indexes_and_move_the_version() {
        let feed = Feed::new("node-a");
        feed.publish_pods(vec![pod("a", &["GPU-1"])]);
        let v = feed.current().version;
        assert_eq!(v, 2);
        assert_eq!(
            feed.current().pods[0].gpus[0].index,
            None,
            "no GPU read yet"
        );
        feed.publish_gpus(
            vec![gpu(0, Severity::Healthy), gpu(1, Severity::Healthy)],
            1,
        );
        let doc = feed.current();
        assert_eq!(doc.version, v + 1);
        assert_eq!(doc.pods[0].gpus[0].index, Some(1));
        feed.publish_pods(vec![pod("a", &["GPU-1"])]);
        assert_eq!(feed.current().version, v + 1, "the same pods are no change");
        feed.publish_pods(vec![pod(
            "a",
            &["GPU-0", "MIG-GPU-1/2/0", "MIG-9f3c", "1", "7"],
        )]);
        let doc = feed.current();
        assert_eq!(doc.version, v + 2);
        let indexes: Vec<Option<u32>> = doc.pods[0].gpus.iter().map(|g| g.index).collect();
        assert_eq!(indexes, vec![Some(0), Some(1), None, Some(1), None]);
        feed.publish_pods(Vec::new());
        assert!(feed.current().pods.is_empty());
        assert_eq!(feed.current().version, v + 3);
        assert!(!serde_json::to_string(&feed.current())
            .unwrap()
            .contains("pods"));
    }

    #[test]
    fn releases_move_the_version_only_on_change() {
        let feed = Feed::new("node-a");
        let v = feed.current().version;
        let rel = |name: &str, canary: u32, generation: u64| FeedRelease {
            name: name.into(),
            model: "demo".into(),
            generation,
            weights: [
                ("stable".to_owned(), 100 - canary),
                ("canary".to_owned(), canary),
            ]
            .into_iter()
            .collect(),
            state: "running".into(),
        };
        feed.publish_releases(vec![rel("b", 10, 1), rel("a", 5, 1)]);
        let doc = feed.current();
        assert_eq!(doc.version, v + 1);
        assert_eq!(doc.releases[0].name, "a", "sorted by name");
        feed.publish_releases(vec![rel("a", 5, 1), rel("b", 10, 1)]);
        assert_eq!(feed.current().version, v + 1);
        feed.publish_releases(vec![rel("a", 5, 1), rel("b", 50, 2)]);
        assert_eq!(feed.current().version, v + 2);
        assert!(serde_json::to_string(&feed.current())
            .unwrap()
            .contains(r#""weights":{"canary":50,"stable":50}"#));
        feed.publish_releases(Vec::new());
        assert!(feed.current().releases.is_empty());
    }

    #[test]
    fn query_is_parsed_and_capped() {
        assert_eq!(
            parse_query(Some("since=7&wait=30s")),
            (7, Duration::from_secs(30))
        );
        assert_eq!(parse_query(Some("wait=10m")), (0, Duration::from_secs(60)));
        assert_eq!(parse_query(None), (0, Duration::ZERO));
        assert_eq!(parse_query(Some("since=x&wait=y")), (0, Duration::ZERO));
    }
}
