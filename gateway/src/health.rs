//! GPU health from `infergate-control` health feeds.
//!
//! One task per feed long-polls `GET {url}?since=VERSION&wait=30s`. The last document of each
//! feed says, for its node, which GPUs are unhealthy and why. An endpoint is taken out when its
//! `node` label names that node and its `gpus` label (`"1"` or `"0,1"`) names an unhealthy GPU
//! (an endpoint with a `node` but no `gpus` label is out when any GPU of its node is). It comes
//! back `hold_down` after its GPUs recover.
//!
//! When a feed cannot be read for `stale_after`, its state is dropped and its endpoints fall
//! back to passive health only (fail open): a control process that died, or a network
//! partition between gateway and node, must not take healthy capacity away; outlier detection
//! still protects against endpoints that really fail. `infergate_health_feed_stale` shows it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use tokio::time::Instant;

use crate::gateway::Gateway;
use crate::table::Table;

/// A feed document, as `infergate-control` serves it (only the fields used here).
#[derive(Clone, Debug, Deserialize)]
pub struct FeedDoc {
    pub version: u64,
    pub node: String,
    #[serde(default)]
    pub gpus: Vec<FeedGpu>,
    #[serde(default)]
    pub models: Vec<FeedModel>,
}

/// A model's warm state on the feed's node.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct FeedModel {
    pub name: String,
    #[serde(default)]
    pub version: String,
    pub state: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct FeedGpu {
    pub index: u32,
    pub state: String,
    #[serde(default)]
    pub reasons: Vec<String>,
}

/// One feed's last word: its node, each unhealthy GPU with its reasons, and its models.
type NodeState = (String, BTreeMap<u32, String>, Vec<FeedModel>);

/// What the gateway knows from every feed: per node, the unhealthy GPUs and why.
#[derive(Default)]
pub struct HealthView {
    /// feed url -> its node's state
    feeds: Mutex<HashMap<String, NodeState>>,
}

impl HealthView {
    /// Records a feed's latest document.
    pub fn update(&self, feed: &str, doc: &FeedDoc) {
        let bad: BTreeMap<u32, String> = doc
            .gpus
            .iter()
            .filter(|g| g.state == "unhealthy")
            .map(|g| (g.index, g.reasons.join("; ")))
            .collect();
        let mut feeds = self
            .feeds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        feeds.insert(feed.to_owned(), (doc.node.clone(), bad, doc.models.clone()));
    }

    /// Forgets a stale feed (fail open).
    pub fn forget(&self, feed: &str) -> bool {
        self.feeds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(feed)
            .is_some()
    }

    /// Applies the known state to the endpoints of `table`: blocks those on unhealthy GPUs,
    /// releases (after `hold_down`) those whose GPUs are fine.
    pub fn apply(&self, table: &Table, hold_down: Duration) {
        let feeds = self
            .feeds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut by_node: HashMap<&str, Vec<(u32, &str)>> = HashMap::new();
        let mut models: HashMap<&str, Vec<&FeedModel>> = HashMap::new();
        for (node, bad, m) in feeds.values() {
            let e = by_node.entry(node.as_str()).or_default();
            e.extend(bad.iter().map(|(g, r)| (*g, r.as_str())));
            models.entry(node.as_str()).or_default().extend(m.iter());
        }
        let now = Instant::now();
        for b in table.backends() {
            for ep in &b.endpoints {
                let Some(node) = ep.labels.get("node") else {
                    continue;
                };
                if let Some(model) = ep.labels.get("model") {
                    let version = ep.labels.get("version");
                    let known = models.get(node.as_str()).map(Vec::as_slice).unwrap_or(&[]);
                    let entry = known
                        .iter()
                        .find(|m| m.name == *model && version.is_none_or(|v| *v == m.version));
                    match entry {
                        Some(m) if m.state == "warm" => ep.state.set_warm(true, ""),
                        Some(m) => ep.state.set_warm(
                            false,
                            &format!("model {model} {} on {node} is {}", m.version, m.state),
                        ),
                        // A feed that has gone stale is forgotten: fail open, as for GPUs.
                        None if !by_node.contains_key(node.as_str()) => ep.state.set_warm(true, ""),
                        None => ep
                            .state
                            .set_warm(false, &format!("model {model} has no warmup on {node}")),
                    }
                }
                let bad = by_node.get(node.as_str()).map(Vec::as_slice).unwrap_or(&[]);
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
    }
}

/// Follows one feed until the task is aborted.
pub async fn follow(gw: Arc<Gateway>, url: String, stale_after: Duration, hold_down: Duration) {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(Duration::from_secs(2)));
    http.set_nodelay(true);
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(http);
    let stale = gw.metrics().feed_stale(&url);
    let mut version = 0u64;
    let mut last_ok = Instant::now();
    let mut failures = 0u32;
    loop {
        let sep = if url.contains('?') { '&' } else { '?' };
        let target = format!("{url}{sep}since={version}&wait=20s");
        match fetch(&client, &target).await {
            Ok(doc) => {
                failures = 0;
                last_ok = Instant::now();
                stale.set(0);
                version = doc.version;
                gw.health().update(&url, &doc);
                gw.health().apply(&gw.table(), hold_down);
            }
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(feed = %url, error = %e, "cannot read health feed; keeping its last state");
                }
                if last_ok.elapsed() >= stale_after && stale.get() == 0 {
                    tracing::warn!(feed = %url, "health feed stale: failing open to passive health");
                    stale.set(1);
                    if gw.health().forget(&url) {
                        gw.health().apply(&gw.table(), hold_down);
                    }
                }
                let backoff = Duration::from_millis(200 * u64::from(failures.min(10)));
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

async fn fetch(client: &Client<HttpConnector, Empty<Bytes>>, url: &str) -> Result<FeedDoc, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let req = http::Request::get(uri)
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(25), client.request(req))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("status {}", resp.status()));
    }
    let body = tokio::time::timeout(
        Duration::from_secs(5),
        http_body_util::Limited::new(resp.into_body(), 1 << 20).collect(),
    )
    .await
    .map_err(|_| "body timed out".to_owned())?
    .map_err(|e| e.to_string())?
    .to_bytes();
    serde_json::from_slice(&body).map_err(|e| format!("bad feed document: {e}"))
}
