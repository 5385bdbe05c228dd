//! The engine's shared state: running slots, the waiting count, timing and metrics.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::sim::metrics::Metrics;
use crate::sim::timing::Latency;

use super::kv::{SchedConfig, Scheduler};

/// Capacity, timing and metrics shared by all requests of one simulator.
pub struct Engine {
    pub(super) slots: Option<Arc<Semaphore>>,
    pub(super) max_waiting: usize,
    pub(super) waiting: AtomicUsize,
    pub(super) ttft: Latency,
    pub(super) itl: Latency,
    pub(super) prefill_per_1k_tokens: Duration,
    pub(super) metrics: Arc<Metrics>,
    /// The KV-cache scheduler; `None` for the slot-and-queue model alone.
    pub(super) kv: Option<Mutex<Scheduler>>,
    pub(super) block_size: u32,
}

/// The KV-cache model of an [`Engine`].
#[derive(Clone, Copy, Debug)]
pub struct KvConfig {
    /// Capacity in tokens, rounded down to whole blocks (at least one).
    pub capacity_tokens: u64,
    /// Tokens per block.
    pub block_size: u32,
    /// Whether full prompt blocks are cached and shared.
    pub prefix_caching: bool,
}

/// Settings of an [`Engine`].
pub struct EngineConfig {
    pub max_running: Option<usize>,
    pub max_waiting: usize,
    pub ttft: Latency,
    pub itl: Latency,
    pub prefill_per_1k_tokens: Duration,
    /// With a KV model, requests wait for blocks as well as for a running slot, and may be
    /// preempted; without, KV use is only measured.
    pub kv: Option<KvConfig>,
}

impl Engine {
    /// Fails when `max_running` is `Some(0)` or the KV block size is 0.
    pub fn new(cfg: EngineConfig, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        if cfg.max_running == Some(0) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "max_running must be at least 1",
            ));
        }
        let mut block_size = 0;
        let kv = match cfg.kv {
            Some(kv) if kv.block_size == 0 => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the KV block size must be at least 1 token",
                ))
            }
            Some(kv) => {
                block_size = kv.block_size;
                let sched = SchedConfig {
                    blocks: (kv.capacity_tokens / u64::from(kv.block_size)).max(1),
                    block_size: kv.block_size,
                    prefix_caching: kv.prefix_caching,
                    max_running: cfg.max_running,
                    max_waiting: cfg.max_waiting,
                };
                Some(Mutex::new(Scheduler::new(sched, Arc::clone(&metrics))))
            }
            None => None,
        };
        let slots = match cfg.max_running {
            _ if kv.is_some() => None,
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
            kv,
            block_size,
        })
    }

    /// Tokens per KV block when the engine models the KV cache, else `None`: prompts are
    /// then hashed by blocks of this size for the prefix cache.
    pub fn block_size(&self) -> Option<u32> {
        self.kv.as_ref().map(|_| self.block_size)
    }

    #[cfg(test)]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}
