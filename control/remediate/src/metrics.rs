//! Counters a [`Remediator`](crate::Remediator) keeps, for the control process to export
//! (e.g. as `infergate_remediation_*` Prometheus metrics).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// A shared handle on the counters: clone it into the metrics exporter.
#[derive(Clone, Debug, Default)]
pub struct RemediationMetrics(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    actions: AtomicU64,
    action_errors: AtomicU64,
    episodes_started: AtomicU64,
    episodes_recovered: AtomicU64,
    episodes_exhausted: AtomicU64,
    breaker_trips: AtomicU64,
    breaker_open: AtomicBool,
    suppressed_cooldown: AtomicU64,
    suppressed_breaker: AtomicU64,
    suppressed_lease: AtomicU64,
}

/// The counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Actions taken (condition, taint, cordon, eviction, restart, request…).
    pub actions_total: u64,
    /// Actions that failed.
    pub action_errors_total: u64,
    /// Remediations started (a lease taken for a node).
    pub episodes_started_total: u64,
    /// Remediations ended by the GPUs recovering.
    pub episodes_recovered_total: u64,
    /// Remediations that ran out of ladder: a human is needed.
    pub episodes_exhausted_total: u64,
    /// Times the circuit breaker opened.
    pub breaker_trips_total: u64,
    /// The breaker is open now.
    pub breaker_open: bool,
    /// Disruptive steps held back by the cooldown (one per `observe`).
    pub suppressed_cooldown_total: u64,
    /// … by the open breaker (or an unknown fleet state).
    pub suppressed_breaker_total: u64,
    /// … for want of a free lease.
    pub suppressed_lease_total: u64,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl RemediationMetrics {
    pub fn snapshot(&self) -> MetricsSnapshot {
        let c = &self.0;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MetricsSnapshot {
            actions_total: get(&c.actions),
            action_errors_total: get(&c.action_errors),
            episodes_started_total: get(&c.episodes_started),
            episodes_recovered_total: get(&c.episodes_recovered),
            episodes_exhausted_total: get(&c.episodes_exhausted),
            breaker_trips_total: get(&c.breaker_trips),
            breaker_open: c.breaker_open.load(Ordering::Relaxed),
            suppressed_cooldown_total: get(&c.suppressed_cooldown),
            suppressed_breaker_total: get(&c.suppressed_breaker),
            suppressed_lease_total: get(&c.suppressed_lease),
        }
    }

    pub(crate) fn action(&self, ok: bool) {
        inc(&self.0.actions);
        if !ok {
            inc(&self.0.action_errors);
        }
    }
    pub(crate) fn episode_started(&self) {
        inc(&self.0.episodes_started);
    }
    pub(crate) fn episode_recovered(&self) {
        inc(&self.0.episodes_recovered);
    }
    pub(crate) fn episode_exhausted(&self) {
        inc(&self.0.episodes_exhausted);
    }
    pub(crate) fn breaker(&self, open: bool, tripped: bool) {
        self.0.breaker_open.store(open, Ordering::Relaxed);
        if tripped {
            inc(&self.0.breaker_trips);
        }
    }
    pub(crate) fn suppressed_cooldown(&self) {
        inc(&self.0.suppressed_cooldown);
    }
    pub(crate) fn suppressed_breaker(&self) {
        inc(&self.0.suppressed_breaker);
    }
    pub(crate) fn suppressed_lease(&self) {
        inc(&self.0.suppressed_lease);
    }
}
