//! The range workers of one file: as many as its share of the job's connections, after a
//! probe when it is not known yet whether the server honours `Range`.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::chunk::fetch_chunk;
use super::source::SourceImpl;
use crate::ctx::{FileCtx, JobCtx};
use crate::http::{RANGES_NO, RANGES_UNKNOWN, RANGES_YES};
use crate::io_errors::join_error;
use crate::outcome::{Done, Fail};

/// Runs the range workers of a file to the end; a fatal error stops the whole job.
pub(super) async fn run_workers(ctx: &Arc<JobCtx>, source: &Arc<SourceImpl>, f: &Arc<FileCtx>) {
    let mut workers = JoinSet::new();
    if f.queued() == 0 {
        return;
    }
    let ranges = match &**source {
        SourceImpl::Http(h) => h.ranges(),
        SourceImpl::Local(_) => RANGES_YES,
    };
    if ranges == RANGES_NO {
        // Known not to support ranges: one stream of the whole file.
        let (ctx2, source2, f2) = (ctx.clone(), source.clone(), f.clone());
        workers.spawn(async move {
            let owned = f2
                .drain()
                .into_iter()
                .map(|c| (c, f2.bounds(c).0))
                .collect();
            match &*source2 {
                SourceImpl::Http(h) => h.fetch_whole(&ctx2, &f2, owned, None).await,
                SourceImpl::Local(_) => Ok(()),
            }
        });
    } else {
        let mut spawned = 0;
        if ranges == RANGES_UNKNOWN && f.queued() > 1 {
            // Probe: the first request alone tells whether the server honours Range.
            if let Some(first) = f.pop() {
                let (tx, rx) = oneshot::channel();
                workers.spawn(range_worker(
                    ctx.clone(),
                    source.clone(),
                    f.clone(),
                    Some((first, tx)),
                ));
                spawned += 1;
                let _ = rx.await;
            }
        }
        let want = ctx.ranges_per_file().min(f.queued() + spawned);
        for _ in spawned..want {
            workers.spawn(range_worker(ctx.clone(), source.clone(), f.clone(), None));
        }
    }
    while let Some(res) = workers.join_next().await {
        match res {
            Ok(Ok(())) => {}
            Ok(Err(fail)) => ctx.fail_with(&f.entry.path, fail, || source.location(&f.entry.path)),
            Err(e) => ctx.fail(join_error(e)),
        }
    }
}

/// Fetches chunks of `f` until none is left: first the probe chunk, when given, whose
/// answer tells (on its channel) whether the server honours `Range`.
async fn range_worker(
    ctx: Arc<JobCtx>,
    source: Arc<SourceImpl>,
    f: Arc<FileCtx>,
    mut first: Option<(u64, oneshot::Sender<bool>)>,
) -> Result<(), Fail> {
    loop {
        if ctx.abort.is_cancelled() {
            return Err(Fail::Stopped);
        }
        let (chunk, mut probe) = match first.take() {
            Some((c, tx)) => (c, Some(tx)),
            None => match f.pop() {
                Some(c) => (c, None),
                None => return Ok(()),
            },
        };
        match fetch_chunk(&ctx, &source, &f, chunk, &mut probe).await? {
            Done::Chunk => {}
            Done::Whole => return Ok(()),
        }
    }
}
