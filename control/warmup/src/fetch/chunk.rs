//! One chunk of a file from the job's source, retried from the last byte written.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::source::SourceImpl;
use crate::ctx::{FileCtx, JobCtx};
use crate::outcome::{Done, Fail};

/// One chunk, with retries of transient errors that continue from the last byte written.
pub(super) async fn fetch_chunk(
    ctx: &JobCtx,
    source: &SourceImpl,
    f: &Arc<FileCtx>,
    chunk: u64,
    probe: &mut Option<oneshot::Sender<bool>>,
) -> Result<Done, Fail> {
    let (start, end) = f.bounds(chunk);
    let mut pos = start;
    let mut attempt = 0u32;
    loop {
        if ctx.abort.is_cancelled() {
            return Err(Fail::Stopped);
        }
        let res = match source {
            SourceImpl::Http(h) => h.fetch_range(ctx, f, chunk, &mut pos, end, probe).await,
            SourceImpl::Local(l) => l
                .read_range(ctx, f, &mut pos, end)
                .await
                .map(|()| Done::Chunk),
        };
        match res {
            Ok(Done::Chunk) => {
                f.chunk_finished(chunk).await?;
                return Ok(Done::Chunk);
            }
            Ok(Done::Whole) => return Ok(Done::Whole),
            Err(Fail::Transient { reason, connect }) => {
                attempt += 1;
                if attempt > ctx.tuning.retries {
                    let location = source.location(&f.entry.path);
                    return Err(Fail::Fatal(ctx.exhausted(
                        &f.entry.path,
                        location,
                        reason,
                        connect,
                    )));
                }
                tracing::warn!(
                    path = %f.entry.path, chunk, attempt, error = %reason,
                    "warmup: transient error, retrying"
                );
                if !ctx.backoff(attempt).await {
                    return Err(Fail::Stopped);
                }
            }
            Err(e) => return Err(e),
        }
    }
}
