//! The job: manifest, files already in place, free space, parallel fetches, pre-read.

mod dest;
mod existing;
mod files;
mod job;
mod preread;
mod report;
mod space;
mod verified;

use std::sync::Arc;

use crate::cancel::CancelToken;
use crate::error::WarmupError;
use crate::hooks::Hooks;
use crate::job::WarmupJob;
use crate::progress::{Progress, WarmupState};
use job::run_job;

pub use report::Report;

/// Runs a warmup job to the end: every manifest file verified under its final name in
/// `job.dest`, or an error that names what failed.
///
/// `progress` is updated all along (pass a fresh `Arc<Progress>` per job and read it from the
/// admin API); it ends `warm` or `failed`. Cancelling `cancel` stops the transfers promptly,
/// keeps the finished chunks (`<path>.partial` + `<path>.partial.state`) and returns
/// [`WarmupError::Cancelled`]; running the same job again resumes from them.
pub async fn run(
    job: WarmupJob,
    progress: Arc<Progress>,
    cancel: CancelToken,
) -> Result<Report, WarmupError> {
    run_with_hooks(job, progress, cancel, Hooks::default()).await
}

pub(crate) async fn run_with_hooks(
    job: WarmupJob,
    progress: Arc<Progress>,
    cancel: CancelToken,
    hooks: Hooks,
) -> Result<Report, WarmupError> {
    progress.begin(&job.model, &job.version);
    tracing::info!(model = %job.model, version = %job.version, source = %job.source, dest = %job.dest.display(), "warmup: starting");
    let result = run_job(&job, &progress, &cancel, hooks).await;
    match &result {
        Ok(report) => {
            progress.set_state(WarmupState::Warm);
            tracing::info!(
                model = %job.model, version = %job.version, files = report.files_total,
                fetched = report.files_fetched, bytes = report.bytes_transferred,
                secs = report.elapsed_secs, "warmup: warm"
            );
        }
        Err(e) => {
            progress.set_state(WarmupState::Failed {
                reason: e.to_string(),
            });
            tracing::warn!(model = %job.model, version = %job.version, error = %e, "warmup: failed");
        }
    }
    result
}
