//! Shared, always-readable progress of a warmup.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::rate::rate;
use super::snapshot::ProgressSnapshot;
use super::state::WarmupState;

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) model: String,
    pub(super) version: String,
    pub(super) state: WarmupState,
    pub(super) started: Option<Instant>,
    pub(super) ended: Option<Duration>,
    pub(super) samples: VecDeque<(Instant, u64)>,
    pub(super) resident: Option<u64>,
}

/// Progress of one warmup, shared (`Arc<Progress>`) between [`crate::run()`] and whoever reports
/// it. Reading it never blocks the transfer for long.
#[derive(Debug)]
pub struct Progress {
    pub(super) inner: Mutex<Inner>,
    pub(super) epoch: Instant,
    pub(super) last_sample_ns: AtomicU64,
    pub(super) bytes_done: AtomicU64,
    pub(super) bytes_total: AtomicU64,
    pub(super) transferred: AtomicU64,
    pub(super) files_done: AtomicU64,
    pub(super) files_total: AtomicU64,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    /// A `pending` progress with no totals.
    pub fn new() -> Self {
        Progress {
            inner: Mutex::new(Inner {
                model: String::new(),
                version: String::new(),
                state: WarmupState::Pending,
                started: None,
                ended: None,
                samples: VecDeque::new(),
                resident: None,
            }),
            epoch: Instant::now(),
            last_sample_ns: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            bytes_total: AtomicU64::new(0),
            transferred: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
            files_total: AtomicU64::new(0),
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current state.
    pub fn state(&self) -> WarmupState {
        self.lock().state.clone()
    }

    /// A consistent-enough copy of everything, with the current rate.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let now = Instant::now();
        let transferred = self.transferred.load(Ordering::Relaxed);
        let inner = self.lock();
        let rate = rate(&inner.samples, now, transferred);
        let elapsed = match (inner.ended, inner.started) {
            (Some(d), _) => d,
            (None, Some(s)) => now.duration_since(s),
            (None, None) => Duration::ZERO,
        };
        ProgressSnapshot {
            model: inner.model.clone(),
            version: inner.version.clone(),
            state: inner.state.clone(),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
            rate_bytes_per_sec: if inner.ended.is_some() { 0 } else { rate },
            files_done: self.files_done.load(Ordering::Relaxed),
            files_total: self.files_total.load(Ordering::Relaxed),
            elapsed_secs: elapsed.as_secs_f64(),
            resident_bytes: inner.resident,
        }
    }
}
