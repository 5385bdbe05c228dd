//! Shared, always-readable progress of a warmup.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How far back the current rate looks.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// At most one rate sample per this interval.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// Where a warmup is. Serialised as `{"state":"fetching"}` or
/// `{"state":"failed","reason":"…"}` (flattened into [`ProgressSnapshot`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum WarmupState {
    /// Not started.
    Pending,
    /// Transferring chunks.
    Fetching,
    /// Checking files already in the destination, or finishing (hash, fsync, rename, pre-read)
    /// once every byte is in.
    Verifying,
    /// Every file is in place and verified: a model server can start.
    Warm,
    /// Stopped; `reason` is the error's message (`"warmup cancelled; …"` when cancelled).
    Failed {
        /// The error's message.
        reason: String,
    },
}

/// A point-in-time copy of [`Progress`], for the admin API, metrics and the health feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressSnapshot {
    /// The job's model.
    pub model: String,
    /// The job's version.
    pub version: String,
    /// `state` (and `reason` when failed).
    #[serde(flatten)]
    pub state: WarmupState,
    /// Bytes in place: files already present, resumed chunks, and bytes written by this run.
    pub bytes_done: u64,
    /// Sum of the manifest's sizes (0 until the manifest is read).
    pub bytes_total: u64,
    /// Bytes per second transferred over the last few (5) seconds.
    pub rate_bytes_per_sec: u64,
    /// Files in place and verified.
    pub files_done: u64,
    /// Files in the manifest.
    pub files_total: u64,
    /// Seconds since the job started (frozen when it ends).
    pub elapsed_secs: f64,
    /// Bytes of the model's files found in the page cache after the pre-read (`preread` jobs
    /// on file systems that can tell; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident_bytes: Option<u64>,
}

impl ProgressSnapshot {
    /// Whether the model is warm (the gateway may route to it).
    pub fn is_warm(&self) -> bool {
        self.state == WarmupState::Warm
    }
}

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
        let now = Instant::now();
        let mut inner = self.lock();
        inner.samples.push_back((now, total));
        // Keep one sample older than the window as the baseline.
        while inner.samples.len() > 2
            && inner
                .samples
                .get(1)
                .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
        {
            inner.samples.pop_front();
        }
    }
}

fn rate(samples: &VecDeque<(Instant, u64)>, now: Instant, current: u64) -> u64 {
    // The oldest sample inside the window, or the newest one before it.
    let mut base = None;
    for &(t, bytes) in samples {
        base = Some((t, bytes));
        if now.duration_since(t) <= RATE_WINDOW {
            break;
        }
    }
    let Some((t, bytes)) = base else {
        return 0;
    };
    let secs = now.duration_since(t).as_secs_f64();
    if secs < 0.05 {
        return 0;
    }
    (current.saturating_sub(bytes) as f64 / secs) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_serialises_flat() {
        let p = Progress::new();
        p.begin("llama", "v3");
        p.set_totals(4, 400);
        p.add_done(100);
        p.file_done();
        p.set_state(WarmupState::Fetching);
        let v = serde_json::to_value(p.snapshot()).unwrap();
        assert_eq!(v["state"], "fetching");
        assert_eq!(v["model"], "llama");
        assert_eq!(v["bytes_done"], 100);
        assert_eq!(v["bytes_total"], 400);
        assert_eq!(v["files_done"], 1);
        assert!(v.get("reason").is_none());
        p.set_state(WarmupState::Failed {
            reason: "boom".into(),
        });
        let v = serde_json::to_value(p.snapshot()).unwrap();
        assert_eq!(v["state"], "failed");
        assert_eq!(v["reason"], "boom");
        let back: ProgressSnapshot = serde_json::from_value(v).unwrap();
        assert!(!back.is_warm());
    }

    #[test]
    fn rate_over_window() {
        let now = Instant::now();
        let mut s = VecDeque::new();
        s.push_back((now - Duration::from_secs(2), 0));
        assert_eq!(rate(&s, now, 2000), 1000);
        s.clear();
        assert_eq!(rate(&s, now, 2000), 0);
    }
}
