//! The runner: once a second, every running release reads what it needs (the model's
//! figures, the canary's endpoints on the gateways), advances, is saved when it moved, and
//! has its weights published on the feed.

use std::sync::Arc;
use std::time::Duration;

use infergate_gpu::probe::unix_ms;
use infergate_release::engine::{Observation, Release};
use infergate_release::metrics::{self, routes, Http};

use super::configmaps::Saved;
use super::Releases;

/// Decides whether this process may drive a release (in Kubernetes: holds its Lease).
pub trait Driving: Send + Sync {
    /// True when this process holds (or just took, or renewed) the right to drive `name`.
    fn hold<'a>(&'a self, name: &'a str) -> metrics::BoxFuture<'a, bool>;
    /// Gives the right up (the release ended or was deleted).
    fn release<'a>(&'a self, name: &'a str) -> metrics::BoxFuture<'a, ()>;
}

/// Ticks every release once a second until the task is aborted.
pub async fn run(releases: Arc<Releases>, driving: Option<Arc<dyn Driving>>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        releases.tick_all(driving.as_deref()).await;
    }
}

impl Releases {
    /// One tick of every running release.
    pub async fn tick_all(&self, driving: Option<&dyn Driving>) {
        let active: Vec<Release> = self
            .lock()
            .values()
            .filter(|r| r.is_active())
            .cloned()
            .collect();
        for r in active {
            if let Some(d) = driving {
                if !d.hold(&r.spec.name).await {
                    tracing::debug!(release = %r.spec.name, "another control process drives this release");
                    continue;
                }
            }
            let obs = observe(&self.http, &r).await;
            let Some(ended) = self.apply(&r, obs) else {
                continue;
            };
            if ended {
                if let Some(d) = driving {
                    d.release(&r.spec.name).await;
                }
            }
        }
        self.publish();
    }

    /// Ticks the release `r` (as read before `obs`) with `obs`; whether it has ended, or
    /// `None` when it was deleted meanwhile. A moved release is saved before its transitions
    /// are announced; in Kubernetes, a release another process wrote meanwhile is read again
    /// (and ticked from there next time), and one that cannot be written is put back as it
    /// was, so that the next tick makes the same transition again.
    fn apply(&self, r: &Release, obs: Observation) -> Option<bool> {
        let (before, after, transitions, changed, version) = {
            let mut map = self.lock();
            // Deleted, or deleted and created again, while its figures were read.
            let cur = map
                .get_mut(&r.spec.name)
                .filter(|c| c.record.started_at_ms == r.record.started_at_ms)?;
            let before = cur.clone();
            let error_before = cur.state.read_error.clone();
            let (transitions, changed) = cur.tick(unix_ms(), obs);
            if cur.state.read_error != error_before {
                if let Some(e) = &cur.state.read_error {
                    tracing::warn!(release = %cur.spec.name, error = %e, "cannot read the release's figures; it waits");
                }
            }
            (
                before,
                cur.clone(),
                transitions,
                changed,
                self.version(&r.spec.name),
            )
        };
        if changed {
            match self.backend.save(&after, version) {
                Saved::Ok(v) => {
                    self.keep(&after, v);
                }
                Saved::Stale(current) => {
                    tracing::info!(release = %after.spec.name, "the release was changed by another control process; its state is read again");
                    self.adopt(&after.spec.name, current);
                    return Some(false);
                }
                Saved::Failed(e) => {
                    tracing::error!(release = %after.spec.name, error = %e, "cannot save the release; the step is taken again at the next tick");
                    self.keep(&before, version);
                    return Some(false);
                }
            }
        }
        self.announce(&after, &transitions);
        Some(!after.is_active())
    }
}

/// Reads what the release's next tick needs.
pub async fn observe(http: &Http, r: &Release) -> Observation {
    let src = &r.spec.source;
    let snapshot = if r.needs_snapshot() {
        let source = metrics::from_spec(src, http.clone());
        Some(source.read(&r.spec.model).await)
    } else {
        None
    };
    let canary = if r.needs_canary_view() && !src.gateways.is_empty() {
        Some(
            routes::read(
                http,
                &src.gateways,
                &r.spec.model,
                &r.spec.canary,
                src.timeout.get(),
            )
            .await,
        )
    } else {
        None
    };
    Observation { snapshot, canary }
}
