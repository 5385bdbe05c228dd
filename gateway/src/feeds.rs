//! What the gateway knows from the health feeds, and how it applies to endpoints. Owned by the
//! writer task: feed documents reach it as messages, and it applies them to the endpoints of
//! the live table (and to the endpoints of every new table before it is published).
//!
//! An endpoint is taken out when its `node` label names a feed's node and its `gpus` label
//! (`"1"` or `"0,1"`) names an unhealthy GPU (an endpoint with a `node` but no `gpus` label is
//! out when any GPU of its node is). It comes back `hold_down` after its GPUs recover. An
//! endpoint with `require_warm` waits until the feed of its node reports its model warm.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use infergate_wire::feed::{FeedDoc, FeedModel, GpuHealth};
use tokio::time::Instant;

use crate::backend::{BackendRt, EndpointRt};

/// One feed's last word: each unhealthy GPU with its reasons, and the models' warm state.
struct NodeState {
    node: String,
    bad: BTreeMap<u32, String>,
    models: Vec<FeedModel>,
}

/// A node's unhealthy GPUs (with reasons) and its models, from every feed about it.
type NodeView = (Vec<(u32, String)>, Vec<FeedModel>);

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
            .map(|g| (g.index, g.reasons.join("; ")))
            .collect();
        self.feeds.insert(
            feed.to_owned(),
            NodeState {
                node: doc.node.clone(),
                bad,
                models: doc.models.clone(),
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
            e.0.extend(s.bad.iter().map(|(g, r)| (*g, r.clone())));
            e.1.extend(s.models.iter().cloned());
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
            let models = known.map(|k| k.1.as_slice()).unwrap_or(&[]);
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
        let bad = known.map(|k| k.0.as_slice()).unwrap_or(&[]);
        let hit: Vec<String> = match ep.labels.get("gpus") {
            Some(list) => {
                let mine: Vec<u32> = list
                    .split(',')
                    .filter_map(|g| g.trim().parse().ok())
                    .collect();
                bad.iter()
                    .filter(|(g, _)| mine.contains(g))
                    .map(|(g, r)| format!("gpu {g}: {r}"))
                    .collect()
            }
            None => bad.iter().map(|(g, r)| format!("gpu {g}: {r}")).collect(),
        };
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
