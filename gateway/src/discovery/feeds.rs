//! Health feeds found in the cluster: the control pods chosen by a selector, one per node. The
//! gateway follows the feed of each node that hosts one of its endpoints (their `node`
//! label), and only those: a feed starts when a node gains an endpoint or its control pod
//! becomes Ready, and stops (its state dropped, failing open) when either goes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use infergate_config::{HealthFeed, PortRef};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::{Api, Client};

use super::pods::endpoint;
use super::set::{self, PodSet};
use super::source::SourceState;
use super::Task;
use crate::gateway::Gateway;
use crate::table::Table;

/// Follows the control pods of `feed.kubernetes` and the feeds they serve, until aborted.
pub async fn follow(client: Client, gw: Arc<Gateway>, feed: HealthFeed, state: Arc<SourceState>) {
    let Some(spec) = &feed.kubernetes else {
        return;
    };
    let api: Api<Pod> = Api::namespaced(client, &spec.namespace);
    let selector = infergate_config::selector_text(&spec.selector);
    let mut events = set::watch(api, watcher::Config::default().labels(&selector));
    let port = PortRef::Number(spec.port);
    let mut changes = gw.changes();
    // Control pod name -> (node, feed URL), for the pods that are Ready.
    let mut control: PodSet<(String, String)> = PodSet::default();
    let mut following: HashMap<String, Task> = HashMap::new();
    loop {
        tokio::select! {
            event = set::next(&mut events, &state) => {
                let Some(event) = event else { return };
                let feed_of = |p: &Pod| {
                    let e = endpoint(p, &port, false)?;
                    let node = e.labels.get("node").unwrap_or_default().to_owned();
                    Some((node, format!("{}/v1/health", e.url)))
                };
                if !control.apply(event, feed_of) {
                    continue;
                }
            }
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        let wanted = wanted_feeds(&gw.snapshot(), control.live());
        following.retain(|url, _| {
            let keep = wanted.contains(url);
            if !keep {
                tracing::info!(feed = %url, "no longer following the health feed");
                let (writer, url) = (gw.writer().clone(), url.clone());
                tokio::spawn(async move { writer.feed_stale(&url).await });
            }
            keep
        });
        for url in wanted {
            if following.contains_key(&url) {
                continue;
            }
            tracing::info!(feed = %url, "following the health feed");
            let task = tokio::spawn(crate::health::follow(
                gw.writer().clone(),
                gw.metrics().clone(),
                url.clone(),
                feed.stale_after.get(),
                None,
            ));
            following.insert(url, Task(task));
        }
        state.objects(following.len());
    }
}

/// The feed URLs of the control pods on nodes that host an endpoint of `table`.
fn wanted_feeds(table: &Table, control: &BTreeMap<String, (String, String)>) -> BTreeSet<String> {
    let nodes: HashSet<&str> = table
        .backends()
        .iter()
        .flat_map(|b| b.endpoints.iter())
        .filter_map(|e| e.labels.get("node"))
        .collect();
    control
        .values()
        .filter(|(node, _)| nodes.contains(node.as_str()))
        .map(|(_, url)| url.clone())
        .collect()
}
