//! The health of one discovery source (a backend, or a `health_feeds` entry), kept in its
//! metrics: objects it yields, errors, and how long it has been out of sync.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use kube::runtime::utils::Backoff;
use tokio::time::Instant;

use crate::metrics::DiscoveryMetrics;

pub struct SourceState {
    pub name: String,
    metrics: DiscoveryMetrics,
    /// Since when the source has failed, while it fails.
    broken_since: Mutex<Option<Instant>>,
    /// Its first complete list has been applied.
    synced: AtomicBool,
}

impl SourceState {
    pub fn new(name: String, metrics: DiscoveryMetrics) -> Self {
        SourceState {
            name,
            metrics,
            broken_since: Mutex::new(None),
            synced: AtomicBool::new(false),
        }
    }

    /// Whether the source's first complete set has been applied.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    fn broken(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.broken_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The API server answered.
    pub fn ok(&self) {
        let was = self.broken().take();
        if let Some(since) = was {
            tracing::info!(source = %self.name, down_s = since.elapsed().as_secs_f64(), "discovery back in sync");
        }
        self.metrics.age.set(0.0);
    }

    /// A list or watch failed; the last known set stays.
    pub fn error(&self, error: &dyn std::fmt::Display) {
        self.metrics.errors.inc();
        let mut b = self.broken();
        if b.is_none() {
            *b = Some(Instant::now());
            tracing::warn!(source = %self.name, %error, "discovery cannot reach the API server; keeping the last known set");
        }
    }

    /// How many objects (endpoints, feeds) the source yields now: it has synced.
    pub fn objects(&self, n: usize) {
        self.synced.store(true, Ordering::Release);
        self.metrics
            .objects
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Updates the sync age (called every second).
    pub fn tick(&self) {
        if let Some(since) = *self.broken() {
            self.metrics.age.set(since.elapsed().as_secs_f64());
        }
    }
}

/// Retry delays after a failed list or watch: 250 ms doubling to 5 s, back to the start after
/// an answer. Short, so that a pod change made while the API server was away is seen within
/// seconds of its return.
#[derive(Clone, Debug)]
pub struct Retry {
    next: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { next: Self::FIRST }
    }
}

impl Retry {
    const FIRST: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(5);
}

impl Iterator for Retry {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let d = self.next;
        self.next = (d * 2).min(Self::MAX);
        Some(d)
    }
}

impl Backoff for Retry {
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn retry_doubles_to_five_seconds_and_resets() {
        let mut r = Retry::default();
        let first: Vec<u64> = r.by_ref().take(7).map(|d| d.as_millis() as u64).collect();
        assert_eq!(first, [250, 500, 1000, 2000, 4000, 5000, 5000]);
        r.reset();
        assert_eq!(r.next(), Some(Duration::from_millis(250)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_age_grows_while_broken_and_is_zero_once_in_sync() {
        let m = crate::metrics::Metrics::new().unwrap();
        let s = SourceState::new("llama".into(), m.discovery("llama"));
        s.error(&"connection refused");
        s.error(&"connection refused");
        tokio::time::advance(Duration::from_secs(3)).await;
        s.tick();
        let page = String::from_utf8(m.encode()).unwrap();
        assert!(
            page.contains("infergate_discovery_errors_total{source=\"llama\"} 2"),
            "{page}"
        );
        assert!(
            page.contains("infergate_discovery_sync_age_seconds{source=\"llama\"} 3"),
            "{page}"
        );
        s.ok();
        s.objects(4);
        let page = String::from_utf8(m.encode()).unwrap();
        assert!(
            page.contains("infergate_discovery_sync_age_seconds{source=\"llama\"} 0"),
            "{page}"
        );
        assert!(
            page.contains("infergate_discovery_objects{source=\"llama\"} 4"),
            "{page}"
        );
    }
}
