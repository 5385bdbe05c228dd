//! The page-cache pre-read of a job's files, and how much of them is resident after it.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::task::JoinSet;

use crate::ctx::JobCtx;
use crate::error::WarmupError;
use crate::io_errors::join_error;
use crate::manifest::Manifest;
use crate::sync::lock;

/// Buffer of the page-cache pre-read (one per file being read).
const PREREAD_BUF: usize = 2 << 20;

/// Reads every file once, sequentially, so that it sits in the page cache; then counts how
/// much of it is resident ([`crate::disk::resident_bytes`]). Returns (bytes read, bytes
/// resident), the latter `None` if any file's file system cannot tell.
pub(super) async fn preread(
    ctx: &Arc<JobCtx>,
    manifest: &Manifest,
) -> Result<(u64, Option<u64>), WarmupError> {
    let queue = Arc::new(Mutex::new(
        manifest
            .files
            .iter()
            .map(|e| ctx.dest.join(&e.path))
            .collect::<VecDeque<PathBuf>>(),
    ));
    let mut workers = JoinSet::new();
    for _ in 0..ctx.tuning.parallel_files.min(manifest.files.len()) {
        let (ctx, queue) = (ctx.clone(), queue.clone());
        workers.spawn_blocking(move || -> Result<(u64, Option<u64>), WarmupError> {
            let mut buf = vec![0u8; PREREAD_BUF];
            let (mut total, mut resident) = (0, Some(0u64));
            loop {
                let next = lock(&queue).pop_front();
                let Some(path) = next else {
                    return Ok((total, resident));
                };
                let context = || format!("pre-reading {}", path.display());
                let mut file = File::open(&path).map_err(|e| WarmupError::io(context(), e))?;
                crate::disk::advise_sequential(&file);
                loop {
                    if ctx.abort.is_cancelled() {
                        return Err(WarmupError::Cancelled);
                    }
                    match file.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => total += n as u64,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(WarmupError::io(context(), e)),
                    }
                }
                let here = crate::disk::resident_bytes(&file, &mut buf)
                    .map_err(|e| WarmupError::io(context(), e))?;
                resident = resident.zip(here).map(|(a, b)| a + b);
            }
        });
    }
    let (mut total, mut resident) = (0, Some(0u64));
    while let Some(res) = workers.join_next().await {
        let (read, here) = res.map_err(join_error)??;
        total += read;
        resident = resident.zip(here).map(|(a, b)| a + b);
    }
    Ok((total, resident))
}
