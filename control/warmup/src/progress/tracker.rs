//! Shared, always-readable progress of a warmup.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::rate::{push_sample, rate, SAMPLE_EVERY};
use super::snapshot::ProgressSnapshot;
use super::state::WarmupState;

#[derive(Debug)]
struct Inner {
    model: String,
    version: String,
    state: WarmupState,
    started: Option<Instant>,
    ended: Option<Duration>,
    samples: VecDeque<(Instant, u64)>,
    resident: Option<u64>,
}

/// Progress of one warmup, shared (`Arc<Progress>`) between [`crate::run`] and whoever reports
/// it. Reading it never blocks the transfer for long.
#[derive(Debug)]
pub struct Progress {
    inner: Mutex<Inner>,
    epoch: Instant,
    last_sample_ns: AtomicU64,
    bytes_done: AtomicU64,
    bytes_total: AtomicU64,
    transferred: AtomicU64,
    files_done: AtomicU64,
    files_total: AtomicU64,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
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

    pub(crate) fn begin(&self, model: &str, version: &str) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.model = model.to_string();
        inner.version = version.to_string();
        inner.state = WarmupState::Pending;
        inner.started = Some(now);
        inner.ended = None;
        inner.resident = None;
        inner.samples.clear();
        inner
            .samples
            .push_back((now, self.transferred.load(Ordering::Relaxed)));
        for counter in [
            &self.bytes_done,
            &self.bytes_total,
            &self.files_done,
            &self.files_total,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }

    pub(crate) fn set_resident(&self, bytes: Option<u64>) {
        self.lock().resident = bytes;
    }

    pub(crate) fn set_totals(&self, files: u64, bytes: u64) {
        self.files_total.store(files, Ordering::Relaxed);
        self.bytes_total.store(bytes, Ordering::Relaxed);
    }

    pub(crate) fn set_state(&self, state: WarmupState) {
        let mut inner = self.lock();
        let terminal = matches!(state, WarmupState::Warm | WarmupState::Failed { .. });
        inner.state = state;
        if terminal {
            inner.ended = inner.started.map(|s| s.elapsed());
        }
    }

    /// Switches `fetching` to `verifying` (and nothing else).
    pub(crate) fn fetching_to_verifying(&self) {
        let mut inner = self.lock();
        if inner.state == WarmupState::Fetching {
            inner.state = WarmupState::Verifying;
        }
    }

    pub(crate) fn bytes_done(&self) -> u64 {
        self.bytes_done.load(Ordering::Relaxed)
    }

    pub(crate) fn bytes_total(&self) -> u64 {
        self.bytes_total.load(Ordering::Relaxed)
    }

    pub(crate) fn add_done(&self, n: u64) {
        self.bytes_done.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sub_done(&self, n: u64) {
        let _ = self
            .bytes_done
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
    }

    pub(crate) fn file_done(&self) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
    }

    /// Files of the job not in place yet (those being fetched included): the total less those
    /// done, which are the files found in place and those fetched.
    pub(crate) fn files_left(&self) -> usize {
        let left = self
            .files_total
            .load(Ordering::Relaxed)
            .saturating_sub(self.files_done.load(Ordering::Relaxed));
        usize::try_from(left).unwrap_or(usize::MAX)
    }

    /// Bytes moved from the source by this run (drives the rate).
    pub(crate) fn add_transferred(&self, n: u64) {
        let total = self.transferred.fetch_add(n, Ordering::Relaxed) + n;
        let now_ns = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let last = self.last_sample_ns.load(Ordering::Relaxed);
        if now_ns.saturating_sub(last) < SAMPLE_EVERY.as_nanos() as u64 {
            return;
        }
        if self
            .last_sample_ns
            .compare_exchange(last, now_ns, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        push_sample(&mut self.lock().samples, Instant::now(), total);
    }
}
