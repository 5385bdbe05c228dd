//! Engine state: the gateway reads each endpoint's Prometheus metrics page (queue, running
//! requests, KV-cache use) for the backends whose balancer needs it (`model_aware`, or
//! `engine_state` set). One task per such backend scrapes its endpoints with bounded
//! concurrency ([`scrape`]); the supervisor here follows the published table and gives each
//! task the backend's current build, so endpoints that come and go with reloads and discovery
//! are followed. Backends without engine state cost nothing.

pub mod parse;
pub mod scrape;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backend::BackendRt;
use crate::gateway::Gateway;

/// A task aborted when dropped.
struct Owned(JoinHandle<()>);

impl Drop for Owned {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the supervisor; aborting it stops every scrape task.
pub fn spawn(gw: Arc<Gateway>) -> JoinHandle<()> {
    tokio::spawn(supervise(gw))
}

async fn supervise(gw: Arc<Gateway>) {
    let mut changes = gw.changes();
    let mut tasks: HashMap<Box<str>, (watch::Sender<Arc<BackendRt>>, Owned)> = HashMap::new();
    loop {
        changes.borrow_and_update();
        let table = gw.snapshot();
        let scraped = table
            .backends()
            .iter()
            .filter(|b| b.scheduler.as_ref().is_some_and(|s| s.scrape.is_some()));
        let mut live: Vec<&str> = Vec::new();
        for b in scraped {
            live.push(&b.name);
            match tasks.get(&b.name) {
                Some((tx, _)) => {
                    if !Arc::ptr_eq(&tx.borrow(), b) {
                        tx.send_replace(b.clone());
                    }
                }
                None => {
                    let (tx, rx) = watch::channel(b.clone());
                    let task = Owned(tokio::spawn(scrape::follow(rx)));
                    tasks.insert(b.name.clone(), (tx, task));
                }
            }
        }
        tasks.retain(|name, _| live.contains(&&**name));
        drop(table);
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// An endpoint's engine state for `/admin/endpoints` and `explain`: the last values read with
/// their age, and the failed scrapes since; `null` before the first successful scrape.
pub fn state_json(
    s: &crate::endpoint::EndpointState,
    now: tokio::time::Instant,
) -> serde_json::Value {
    match s.engine.read(now) {
        Some(r) => serde_json::json!({
            "queue": r.sample.queue,
            "running": r.sample.running,
            "kv_usage": r.sample.kv,
            "age_ms": u64::try_from(r.age.as_millis()).unwrap_or(u64::MAX),
            "failed_scrapes": s.engine.failures(),
        }),
        None if s.engine.failures() > 0 => {
            serde_json::json!({ "failed_scrapes": s.engine.failures() })
        }
        None => serde_json::Value::Null,
    }
}

#[cfg(test)]
mod tests;
