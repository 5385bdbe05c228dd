//! The files to fetch, [`Tuning::files_in_flight`](crate::Tuning::files_in_flight) at a time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::task::JoinSet;

use super::verified::{record_verified, VerifiedRecord};
use crate::ctx::JobCtx;
use crate::fetch::{fetch_file, SourceImpl};
use crate::io_errors::join_error;
use crate::manifest::ManifestEntry;
use crate::sync::lock;

/// Fetches `to_fetch` with parallel file workers, adding each file verified to `record`.
/// Returns the bytes resumed from earlier runs. A file that fails stops the job (see
/// [`JobCtx::fail`]).
pub(super) async fn fetch_files(
    ctx: &Arc<JobCtx>,
    source: &Arc<SourceImpl>,
    record: &Arc<Mutex<VerifiedRecord>>,
    to_fetch: Vec<ManifestEntry>,
) -> u64 {
    let workers_wanted = ctx.tuning.files_in_flight().min(to_fetch.len());
    let queue = Arc::new(Mutex::new(VecDeque::from(to_fetch)));
    let mut workers = JoinSet::new();
    for _ in 0..workers_wanted {
        let (ctx, source, queue, record) =
            (ctx.clone(), source.clone(), queue.clone(), record.clone());
        workers.spawn(async move {
            let mut resumed = 0;
            loop {
                if ctx.abort.is_cancelled() {
                    break;
                }
                let next = lock(&queue).pop_front();
                let Some(entry) = next else { break };
                match fetch_file(&ctx, &source, &entry).await {
                    Ok(r) => {
                        resumed += r;
                        ctx.progress.file_done();
                        if let Err(e) = record_verified(&ctx.dest, &record, &entry).await {
                            tracing::warn!(error = %e, "warmup: could not update the verified record");
                        }
                    }
                    Err(fail) => {
                        ctx.fail_with(&entry.path, fail, || source.location(&entry.path));
                        break;
                    }
                }
            }
            resumed
        });
    }
    let mut bytes_resumed = 0;
    while let Some(res) = workers.join_next().await {
        match res {
            Ok(r) => bytes_resumed += r,
            Err(e) => ctx.fail(join_error(e)),
        }
    }
    bytes_resumed
}
