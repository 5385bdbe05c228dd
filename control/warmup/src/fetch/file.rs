//! One file from start to end: open or resume its `.partial`, fetch the missing chunks,
//! verify the SHA-256, put it into place (or fetch it again).

use std::sync::Arc;

use tokio::sync::mpsc;

use super::hasher::{hash_chunks, mark};
use super::source::SourceImpl;
use super::workers::run_workers;
use crate::ctx::{FileCtx, JobCtx};
use crate::error::WarmupError;
use crate::files::remove_if_exists;
use crate::io_errors::join_error;
use crate::manifest::ManifestEntry;
use crate::names::{with_suffix, PARTIAL_SUFFIX, STATE_SUFFIX};
use crate::outcome::Fail;
use crate::partial::{finalize, open_partial};

/// Fetches one file (resuming from its sidecar), verifies it and renames it into place.
/// Returns the bytes resumed from an earlier run.
pub(crate) async fn fetch_file(
    ctx: &Arc<JobCtx>,
    source: &Arc<SourceImpl>,
    entry: &ManifestEntry,
) -> Result<u64, Fail> {
    let final_path = ctx.dest.join(&entry.path);
    let partial = with_suffix(&final_path, PARTIAL_SUFFIX);
    let state_path = with_suffix(&final_path, STATE_SUFFIX);
    let chunk_size = ctx.tuning.chunk_size;
    let nchunks = entry.size.div_ceil(chunk_size);
    let mut resumed_total = 0;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let opened = {
            let (entry, partial, state_path) = (entry.clone(), partial.clone(), state_path.clone());
            tokio::task::spawn_blocking(move || {
                open_partial(&entry, &partial, &state_path, chunk_size)
            })
            .await
            .map_err(|e| Fail::Fatal(join_error(e)))?
            .map_err(Fail::Fatal)?
        };
        let (file, state) = opened;
        let mut finished = vec![false; usize::try_from(nchunks).unwrap_or(0)];
        let mut resumed = 0;
        for &c in &state.finished {
            mark(&mut finished, c);
            let start = c * chunk_size;
            resumed += (start + chunk_size).min(entry.size) - start;
        }
        if resumed > 0 {
            tracing::info!(path = %entry.path, resumed_bytes = resumed, "warmup: resuming from finished chunks");
        }
        ctx.progress.add_done(resumed);
        if attempts == 1 {
            resumed_total = resumed;
        }

        let file = Arc::new(file);
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let f = Arc::new(FileCtx::new(
            entry.clone(),
            partial.clone(),
            state_path.clone(),
            file.clone(),
            chunk_size,
            state,
            done_tx,
        ));
        let hash = f.hash.clone();
        let hasher = tokio::spawn(hash_chunks(
            file.clone(),
            hash,
            entry.size,
            chunk_size,
            finished,
            done_rx,
            ctx.abort.clone(),
        ));
        run_workers(ctx, source, &f).await;
        drop(f);
        if ctx.abort.is_cancelled() {
            hasher.abort();
            let _ = hasher.await;
            return Err(Fail::Stopped);
        }
        if ctx.progress.bytes_done() >= ctx.progress.bytes_total() {
            ctx.progress.fetching_to_verifying();
        }
        let digest = match hasher.await {
            Ok(Ok(Some(digest))) => digest,
            Ok(Ok(None)) if ctx.abort.is_cancelled() => return Err(Fail::Stopped),
            Ok(Ok(None)) => {
                return Err(Fail::Fatal(WarmupError::Fetch {
                    path: entry.path.clone(),
                    location: source.location(&entry.path),
                    reason: "not every chunk was fetched".into(),
                }))
            }
            Ok(Err(e)) => return Err(Fail::Fatal(e)),
            Err(e) => return Err(Fail::Fatal(join_error(e))),
        };
        if digest == entry.sha256 {
            let path = entry.path.clone();
            let (partial, state_path, final_path) =
                (partial.clone(), state_path.clone(), final_path.clone());
            tokio::task::spawn_blocking(move || {
                finalize(&path, &file, &partial, &state_path, &final_path)
            })
            .await
            .map_err(|e| Fail::Fatal(join_error(e)))?
            .map_err(Fail::Fatal)?;
            tracing::info!(path = %entry.path, size = entry.size, "warmup: file verified and in place");
            return Ok(resumed_total);
        }

        // Wrong bytes: never rename them into place; start this file over.
        drop(file);
        remove_if_exists(&partial);
        remove_if_exists(&state_path);
        ctx.progress.sub_done(entry.size);
        if attempts > ctx.tuning.retries {
            return Err(Fail::Fatal(WarmupError::ChecksumMismatch {
                path: entry.path.clone(),
                expected: entry.sha256.clone(),
                actual: digest,
                attempts,
            }));
        }
        tracing::warn!(
            path = %entry.path, expected = %entry.sha256, actual = %digest, attempt = attempts,
            "warmup: sha256 mismatch, fetching the file again"
        );
        if !ctx.backoff(attempts).await {
            return Err(Fail::Stopped);
        }
    }
}
