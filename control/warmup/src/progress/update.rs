//! How a job updates its progress: its phases, and the counts of files and bytes.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::rate::{push_sample, SAMPLE_EVERY};
use super::state::WarmupState;
use super::tracker::Progress;

impl Progress {
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
