//! The engine's shared state: running slots, the waiting count, timing and metrics.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::sim::metrics::Metrics;
use crate::sim::timing::Latency;

/// Capacity, timing and metrics shared by all requests of one simulator.
pub struct Engine {
    pub(super) slots: Option<Arc<Semaphore>>,
    pub(super) max_waiting: usize,
    pub(super) waiting: AtomicUsize,
    pub(super) ttft: Latency,
    pub(super) itl: Latency,
    pub(super) prefill_per_1k_tokens: Duration,
    pub(super) metrics: Arc<Metrics>,
}

/// Settings of an [`Engine`].
pub struct EngineConfig {
    pub max_running: Option<usize>,
    pub max_waiting: usize,
    pub ttft: Latency,
    pub itl: Latency,
    pub prefill_per_1k_tokens: Duration,
}

impl Engine {
    /// Fails when `max_running` is `Some(0)`.
    pub fn new(cfg: EngineConfig, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let slots = match cfg.max_running {
            Some(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "max_running must be at least 1",
                ))
            }
            Some(n) => Some(Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS)))),
            None => None,
        };
        Ok(Self {
            slots,
            max_waiting: cfg.max_waiting,
            waiting: AtomicUsize::new(0),
            ttft: cfg.ttft,
            itl: cfg.itl,
            prefill_per_1k_tokens: cfg.prefill_per_1k_tokens,
            metrics,
        })
    }

    #[cfg(test)]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}
