//! What the gateway knows from the health feeds, and how it applies to endpoints. Owned by the
//! writer task: feed documents reach it as messages, and it applies them to the endpoints of
//! the live table (and to the endpoints of every new table before it is published).
//!
//! An endpoint is taken out when its `node` label names a feed's node and one of its GPUs is
//! unhealthy. Its GPUs are, in order: those the feed lists for its `pod` label (`namespace/name`,
//! from the kubelet's PodResources API; a pod the feed does not list holds none), those its
//! `gpus` label names (`"1"` or `"0,1"`), or else every GPU of its node. It comes back `hold_down` after its GPUs recover. An
//! endpoint with `require_warm` waits until the feed of its node reports its model warm.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use infergate_wire::feed::{FeedDoc, FeedModel, FeedPodGpu, GpuHealth};
use tokio::time::Instant;

use crate::backend::{BackendRt, EndpointRt};

/// One feed's last word: each unhealthy GPU with its reasons, the models' warm state, and
/// which pod holds which GPU.
struct NodeState {
    node: String,
    bad: BTreeMap<u32, Bad>,
    models: Vec<FeedModel>,
    /// `namespace/name` -> its GPUs; `None` when the feed does not read PodResources.
    pods: Option<HashMap<String, Vec<FeedPodGpu>>>,
}

/// An unhealthy GPU: its UUID and the reasons.
#[derive(Clone)]
struct Bad {
    uuid: String,
    reason: String,
}

/// What the feeds say about one node.
#[derive(Default)]
struct NodeView {
    bad: Vec<(u32, Bad)>,
    models: Vec<FeedModel>,
    pods: Option<HashMap<String, Vec<FeedPodGpu>>>,
}

/// Every feed's last document, by feed URL.
#[derive(Default)]
pub struct FeedState {
    feeds: HashMap<String, NodeState>,
    /// By node: unhealthy GPUs with reasons, and models (rebuilt when a feed changes).
    by_node: HashMap<String, NodeView>,
}

impl FeedState {
    /// Records a feed's latest document.
    pub fn update(&mut self, feed: &str, doc: &FeedDoc) {
        let bad = doc
            .gpus
            .iter()
            .filter(|g| g.state == GpuHealth::Unhealthy)
            .map(|g| {
                let bad = Bad {
                    uuid: g.uuid.clone(),
                    reason: g.reasons.join("; "),
                };
                (g.index, bad)
            })
            .collect();
        let pods = (!doc.pods.is_empty()).then(|| {
            let mut by_pod: HashMap<String, Vec<FeedPodGpu>> = HashMap::new();
            for p in &doc.pods {
                by_pod
                    .entry(format!("{}/{}", p.namespace, p.name))
                    .or_default()
                    .extend(p.gpus.iter().cloned());
            }
            by_pod
        });
        self.feeds.insert(
            feed.to_owned(),
            NodeState {
                node: doc.node.clone(),
                bad,
                models: doc.models.clone(),
                pods,
            },
        );
        self.index();
    }

    /// Forgets a stale feed (fail open). Returns whether it was known.
    pub fn forget(&mut self, feed: &str) -> bool {
        let known = self.feeds.remove(feed).is_some();
        self.index();
        known
    }

    fn index(&mut self) {
        self.by_node.clear();
        for s in self.feeds.values() {
            let e = self.by_node.entry(s.node.clone()).or_default();
            e.bad.extend(s.bad.iter().map(|(g, b)| (*g, b.clone())));
            e.models.extend(s.models.iter().cloned());
            if let Some(pods) = &s.pods {
                let mine = e.pods.get_or_insert_with(HashMap::new);
                for (k, v) in pods {
                    mine.entry(k.clone()).or_default().extend(v.iter().cloned());
                }
            }
        }
    }

    /// Whether no feed has reported anything (then nothing blocks an endpoint).
    pub fn is_empty(&self) -> bool {
        self.by_node.is_empty()
    }

    /// Applies the known state to the endpoints of `backends`: blocks those on unhealthy GPUs
    /// or with a cold model, releases (`hold_down` after `now`) those whose GPUs are fine.
    pub fn apply<'a>(
        &self,
        backends: impl IntoIterator<Item = &'a std::sync::Arc<BackendRt>>,
        hold_down: Duration,
        now: Instant,
    ) {
        for b in backends {
            for ep in &b.endpoints {
                self.apply_one(ep, now, hold_down);
            }
        }
    }

    fn apply_one(&self, ep: &EndpointRt, now: Instant, hold_down: Duration) {
        let Some(node) = ep.labels.get("node") else {
            return;
        };
        let known = self.by_node.get(node);
        if let Some(model) = ep.labels.get("model") {
            let version = ep.labels.get("version");
            let models = known.map(|k| k.models.as_slice()).unwrap_or(&[]);
            let entry = models
                .iter()
                .find(|m| m.name == *model && version.is_none_or(|v| *v == m.version));
            match entry {
                Some(m) if m.state == "warm" => ep.state.set_warm(true, ""),
                Some(m) => ep.state.set_warm(
                    false,
                    &format!("model {model} {} on {node} is {}", m.version, m.state),
                ),
                // A feed that has gone stale is forgotten: fail open, as for GPUs.
                None if known.is_none() => ep.state.set_warm(true, ""),
                None => ep
                    .state
                    .set_warm(false, &format!("model {model} has no warmup on {node}")),
            }
        }
        let bad = known.map(|k| k.bad.as_slice()).unwrap_or(&[]);
        let held = known
            .and_then(|k| k.pods.as_ref())
            .zip(ep.labels.get("pod"))
            .map(|(pods, pod)| pods.get(pod).map(Vec::as_slice).unwrap_or(&[]));
        let mine = |index: u32, b: &Bad| match (held, ep.labels.get("gpus")) {
            (Some(gpus), _) => gpus
                .iter()
                .any(|g| (!g.uuid.is_empty() && g.uuid == b.uuid) || g.index == Some(index)),
            (None, Some(list)) => list
                .split(',')
                .any(|g| g.trim().parse::<u32>().ok() == Some(index)),
            (None, None) => true,
        };
        let hit: Vec<String> = bad
            .iter()
            .filter(|(g, b)| mine(*g, b))
            .map(|(g, b)| format!("gpu {g}: {}", b.reason))
            .collect();
        if hit.is_empty() {
            ep.state.set_gpu_healthy(now, hold_down);
        } else {
            let reason = format!("node {node}: {}", hit.join("; "));
            if ep.state.set_gpu_unhealthy(&reason) {
                tracing::warn!(endpoint = %ep.state.url, %reason, "endpoint ejected: GPU unhealthy");
            }
        }
    }
}
