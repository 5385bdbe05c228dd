//! One run of a job, step by step: source, destination, manifest, files in place, free
//! space, fetches, verified record, pre-read.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::dest::open_dest;
use super::existing::check_existing;
use super::files::fetch_files;
use super::preread::preread;
use super::report::Report;
use super::space::check_space;
use super::verified::{keep_only, VerifiedRecord};
use crate::cancel::CancelToken;
use crate::ctx::JobCtx;
use crate::error::WarmupError;
use crate::fetch::SourceImpl;
use crate::hooks::Hooks;
use crate::job::WarmupJob;
use crate::manifest::Manifest;
use crate::progress::{Progress, WarmupState};

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) async fn run_job(
    job: &WarmupJob,
    progress: &Arc<Progress>,
    cancel: &CancelToken,
    hooks: Hooks,
) -> Result<Report, WarmupError> {
    let started = Instant::now();
    job.tuning.validate()?;
    let source = Arc::new(SourceImpl::new(&job.source, job.ca_file.as_deref())?);
    let _lock = open_dest(job).await?;

    let ctx = Arc::new(JobCtx::new(
        job.dest.clone(),
        job.tuning.clone(),
        progress.clone(),
        hooks,
    ));
    let _forward_cancel = {
        let (cancel, abort) = (cancel.clone(), ctx.abort.clone());
        AbortOnDrop(tokio::spawn(async move {
            cancel.cancelled().await;
            abort.cancel();
        }))
    };
    let stopped = |ctx: &JobCtx| ctx.take_error().unwrap_or(WarmupError::Cancelled);

    // The manifest.
    let fetched = source.manifest(&ctx).await;
    if cancel.is_cancelled() {
        return Err(WarmupError::Cancelled);
    }
    let (location, bytes) = fetched?;
    let manifest = Manifest::from_slice(&bytes, &location)?;
    let bytes_total = manifest.total_size();
    progress.set_totals(manifest.files.len() as u64, bytes_total);

    // Files already in place.
    let record = Arc::new(Mutex::new(VerifiedRecord::load(&job.dest)));
    let to_fetch = check_existing(&ctx, &manifest, &record).await?;
    if ctx.abort.is_cancelled() {
        return Err(stopped(&ctx));
    }
    let bytes_skipped: u64 = manifest.total_size() - to_fetch.iter().map(|e| e.size).sum::<u64>();
    let files_skipped = (manifest.files.len() - to_fetch.len()) as u64;

    // Free space.
    if !to_fetch.is_empty() {
        check_space(&job.dest, &to_fetch).await?;
    }

    // Fetch.
    let files_fetched = to_fetch.len() as u64;
    let mut bytes_resumed = 0;
    if !to_fetch.is_empty() {
        progress.set_state(WarmupState::Fetching);
        bytes_resumed = fetch_files(&ctx, &source, &record, to_fetch).await;
        if ctx.abort.is_cancelled() {
            return Err(stopped(&ctx));
        }
    }

    keep_only(&job.dest, &record, &manifest).await?;

    let (preread_bytes, resident_bytes) = if job.tuning.preread {
        progress.set_state(WarmupState::Verifying);
        let (read, resident) = preread(&ctx, &manifest).await?;
        progress.set_resident(resident);
        (read, resident)
    } else {
        (0, None)
    };

    Ok(Report {
        model: job.model.clone(),
        version: job.version.clone(),
        files_total: manifest.files.len() as u64,
        files_fetched,
        files_skipped,
        bytes_total,
        bytes_transferred: ctx.stats.transferred.load(Ordering::Relaxed),
        bytes_resumed,
        bytes_skipped,
        preread_bytes,
        resident_bytes,
        retries: ctx.stats.retries.load(Ordering::Relaxed),
        elapsed_secs: started.elapsed().as_secs_f64(),
    })
}
