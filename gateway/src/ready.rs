//! When a starting gateway turns ready: once every static health feed has answered (or failed)
//! once, so that it takes no request before it knows the GPU state and the release weights its
//! feeds carry; and once discovery has applied the first complete set of every discovered
//! backend, so that a new replica takes no traffic it has nowhere to send. Each wait is bounded:
//! past it the gateway turns ready anyway, with a warning.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::gateway::Gateway;

/// Longest wait for the health feeds' first answers (a feed that cannot be reached fails
/// within its 2 s connect timeout).
const FEEDS_WAIT: Duration = Duration::from_secs(5);
/// Longest wait for discovery's first complete sets.
const DISCOVERY_WAIT: Duration = Duration::from_secs(30);

/// Turns `gw` ready now when there is nothing to wait for, else from a task (returned).
pub fn when_ready(
    gw: Arc<Gateway>,
    feeds: Vec<oneshot::Receiver<()>>,
    discovery: Option<watch::Receiver<bool>>,
) -> Option<JoinHandle<()>> {
    if feeds.is_empty() && discovery.is_none() {
        gw.set_ready(true);
        return None;
    }
    Some(tokio::spawn(async move {
        let answered = async {
            for f in feeds {
                let _ = f.await;
            }
        };
        if tokio::time::timeout(FEEDS_WAIT, answered).await.is_err() {
            tracing::warn!("a health feed gave no first answer within 5 s; going on");
        }
        if let Some(mut synced) = discovery {
            let found = synced.wait_for(|s| *s);
            if tokio::time::timeout(DISCOVERY_WAIT, found).await.is_err() {
                tracing::warn!("discovery found no endpoints within 30 s; ready anyway");
            }
        }
        if !gw.is_draining() {
            gw.set_ready(true);
        }
    }))
}
