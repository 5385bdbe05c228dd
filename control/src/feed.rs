//! The health feed: `GET /v1/health` serves the node's GPU states with a version that grows on
//! every change; `?since=V&wait=30s` waits (long-poll) until the version is above `V` or the
//! wait ends, then answers with the current document either way. The document is
//! [`infergate_wire::feed::FeedDoc`], the type the gateway reads it with.

use std::sync::Arc;
use std::time::Duration;

use infergate_gpu::health::{GpuState, Severity};
pub use infergate_wire::feed::{FeedDoc, FeedGpu, FeedModel, GpuHealth};
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
