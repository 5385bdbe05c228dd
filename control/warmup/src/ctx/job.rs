//! The context every task of one job shares: settings, progress, cancellation, bandwidth cap,
//! counters and the job's first error.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cancel::CancelToken;
use crate::error::WarmupError;
use crate::hooks::Hooks;
use crate::job::Tuning;
use crate::limiter::TokenBucket;
use crate::outcome::Fail;
use crate::progress::Progress;
use crate::sync::lock;

/// What a job did, counted as it goes.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub retries: AtomicU64,
    pub transferred: AtomicU64,
}

/// Everything the tasks of one job share.
pub(crate) struct JobCtx {
    pub dest: PathBuf,
    pub tuning: Tuning,
    pub progress: Arc<Progress>,
    /// Cancelled when the caller cancels or when a file fails for good.
    pub abort: CancelToken,
    pub limiter: Option<TokenBucket>,
    pub hooks: Hooks,
    pub stats: Stats,
    first_error: Mutex<Option<WarmupError>>,
}

impl JobCtx {
    pub(crate) fn new(
        dest: PathBuf,
        tuning: Tuning,
        progress: Arc<Progress>,
        hooks: Hooks,
    ) -> Self {
        let limiter = tuning.bandwidth_cap.map(TokenBucket::new);
        JobCtx {
            dest,
            tuning,
            progress,
            abort: CancelToken::new(),
            limiter,
            hooks,
            stats: Stats::default(),
            first_error: Mutex::new(None),
        }
    }

    /// Range workers for a file starting now: [`Tuning::max_connections`] shared by the files
    /// in flight, at most [`Tuning::parallel_ranges`], at least one.
    pub(crate) fn ranges_per_file(&self) -> usize {
        let in_flight = self
            .tuning
            .files_in_flight()
            .min(self.progress.files_left())
            .max(1);
        (self.tuning.max_connections / in_flight).clamp(1, self.tuning.parallel_ranges.max(1))
    }

    /// Records the job's error (the first one wins) and stops every transfer.
    pub(crate) fn fail(&self, err: WarmupError) {
        tracing::debug!(error = %err, "warmup: stopping the job");
        let mut slot = lock(&self.first_error);
        if slot.is_none() {
            *slot = Some(err);
        }
        drop(slot);
        self.abort.cancel();
    }

    /// Stops the job for a failure of the file `path` (at `location` in the source): fatal, or
    /// transient past its retries. `Stopped` (the job is already stopping) adds nothing.
    pub(crate) fn fail_with(&self, path: &str, f: Fail, location: impl FnOnce() -> String) {
        match f {
            Fail::Fatal(e) => self.fail(e),
            Fail::Transient { reason, connect } => {
                self.fail(self.exhausted(path, location(), reason, connect))
            }
            Fail::Stopped => {}
        }
    }

    pub(crate) fn take_error(&self) -> Option<WarmupError> {
        lock(&self.first_error).take()
    }

    /// Sleeps before retry `attempt` (1-based): `retry_backoff_ms × 2^(attempt-1)`, ±50 %
    /// jitter, at most 30 s. False when the job stopped meanwhile.
    pub(crate) async fn backoff(&self, attempt: u32) -> bool {
        self.stats.retries.fetch_add(1, Ordering::Relaxed);
        let exp = attempt.saturating_sub(1).min(20);
        let base = self.tuning.retry_backoff_ms as f64 * f64::from(1u32 << exp);
        let ms = (base * rand::random_range(0.5..1.5)).min(30_000.0);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(ms / 1000.0)) => true,
            _ = self.abort.cancelled() => false,
        }
    }

    /// The error for a transient failure of the file `path`, fetched from `location`, that
    /// outlived its retries.
    pub(crate) fn exhausted(
        &self,
        path: &str,
        location: String,
        reason: String,
        connect: bool,
    ) -> WarmupError {
        let reason = format!("{reason} (after {} attempts)", self.tuning.retries + 1);
        if connect {
            WarmupError::Unreachable {
                url: location,
                reason,
            }
        } else {
            WarmupError::Fetch {
                path: path.to_string(),
                location,
                reason,
            }
        }
    }

    pub(crate) async fn throttle(&self, n: usize) {
        if let Some(limiter) = &self.limiter {
            limiter.acquire(n as u64).await;
        }
    }

    /// Counts `n` bytes moved from the source and written.
    pub(crate) fn account(&self, n: u64) {
        self.progress.add_done(n);
        self.progress.add_transferred(n);
        self.stats.transferred.fetch_add(n, Ordering::Relaxed);
    }
}
