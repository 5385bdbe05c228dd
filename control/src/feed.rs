//! The health feed: `GET /v1/health` serves the node's GPU states with a version that grows on
//! every change; `?since=V&wait=30s` waits (long-poll) until the version is above `V` or the
//! wait ends, then answers with the current document either way.

use std::sync::Arc;
use std::time::Duration;

use infergate_gpu::health::GpuState;
use serde::Serialize;
use tokio::sync::watch;

/// The document on the feed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FeedDoc {
    /// Grows by one on every change of `gpus` (or `models`).
    pub version: u64,
    pub node: String,
    /// Unix time in milliseconds of the reading behind this document.
    pub read_at_ms: u64,
    pub gpus: Vec<GpuState>,
    /// Warm state of model caches on this node (filled by warmup jobs).
    pub models: Vec<ModelWarmth>,
}

/// Whether a model's files are warm in this node's cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelWarmth {
    pub name: String,
    pub version: String,
    pub state: String,
}

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
        self.tx.send_if_modified(|doc| {
            let strip = |g: &[GpuState]| -> Vec<(u32, String, infergate_gpu::health::Severity, Vec<String>)> {
                g.iter()
                    .map(|s| (s.index, s.uuid.clone(), s.state, s.reasons.clone()))
                    .collect()
            };
            let changed = strip(&doc.gpus) != strip(&gpus);
            doc.read_at_ms = read_at_ms;
            doc.gpus = gpus;
            if changed {
                doc.version += 1;
            }
            changed
        });
    }

    /// Publishes the warm state of model caches.
    pub fn publish_models(&self, models: Vec<ModelWarmth>) {
        self.tx.send_if_modified(|doc| {
            if doc.models == models {
                return false;
            }
            doc.models = models;
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
    use infergate_gpu::health::Severity;

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
        assert_eq!(doc.gpus[0].state, Severity::Unhealthy);
        // Nothing newer: answers after the wait with the current document.
        let started = tokio::time::Instant::now();
        let same = feed.wait_above(v + 1, Duration::from_millis(100)).await;
        assert_eq!(same.version, v + 1);
        assert!(started.elapsed() >= Duration::from_millis(90));
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
