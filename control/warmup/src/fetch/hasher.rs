//! SHA-256 of a file in file order, while its chunks are fetched.
//!
//! Bytes written exactly at the hash position are hashed right there from the received
//! buffers (see [`crate::ctx::FileCtx::write_and_hash`]); everything else (the chunks ahead of
//! the frontier, and chunks an earlier run left) is read back from the page cache once every
//! chunk before it is finished.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use sha2::Digest;
use tokio::sync::mpsc;

use crate::cancel::CancelToken;
use crate::ctx::HashState;
use crate::digest::hex;
use crate::error::WarmupError;
use crate::io_errors::join_error;
use crate::sync::lock;

/// Read-back buffer of the hasher (one per file in flight, while it reads back).
const HASH_BUF: usize = 1 << 20;
/// The hasher reads at most this many finished chunks per blocking call.
const HASH_BATCH: u64 = 4;

/// SHA-256 of the file in order, finished as its chunks finish: reads back, at most
/// [`HASH_BATCH`] chunks per blocking call, whatever the writers did not hash in order, up to
/// the end of the finished chunks. `None` if the job stopped first.
pub(super) async fn hash_chunks(
    file: Arc<File>,
    hash: Arc<Mutex<HashState>>,
    size: u64,
    chunk_size: u64,
    mut finished: Vec<bool>,
    mut rx: mpsc::UnboundedReceiver<u64>,
    abort: CancelToken,
) -> Result<Option<String>, WarmupError> {
    let nchunks = finished.len() as u64;
    let mut buf = Vec::new();
    // Chunks before `next` are finished.
    let mut next = 0u64;
    loop {
        while finished.get(next as usize).copied().unwrap_or(false) {
            next += 1;
        }
        let prefix_end = next.saturating_mul(chunk_size).min(size);
        let pos = lock(&hash).pos;
        if pos >= prefix_end {
            if next >= nchunks {
                break;
            }
            tokio::select! {
                c = rx.recv() => match c {
                    Some(c) => mark(&mut finished, c),
                    None => return Ok(None),
                },
                _ = abort.cancelled() => return Ok(None),
            }
            while let Ok(c) = rx.try_recv() {
                mark(&mut finished, c);
            }
            continue;
        }
        let to = prefix_end.min(pos.saturating_add(HASH_BATCH * chunk_size));
        let (file2, hash2) = (file.clone(), hash.clone());
        buf = tokio::task::spawn_blocking(move || -> io::Result<Vec<u8>> {
            if buf.is_empty() {
                buf = vec![0u8; HASH_BUF];
            }
            let mut h = lock(&hash2);
            while h.pos < to {
                let n = buf
                    .len()
                    .min(usize::try_from(to - h.pos).unwrap_or(usize::MAX));
                file2.read_exact_at(&mut buf[..n], h.pos)?;
                h.hasher.update(&buf[..n]);
                h.pos += n as u64;
            }
            Ok(buf)
        })
        .await
        .map_err(join_error)?
        .map_err(|e| WarmupError::io("reading back a fetched chunk to hash it", e))?;
    }
    let h = lock(&hash);
    Ok(Some(hex(&h.hasher.clone().finalize())))
}

/// Marks chunk `c` finished in `finished`.
pub(super) fn mark(finished: &mut [bool], c: u64) {
    if let Some(slot) = finished.get_mut(c as usize) {
        *slot = true;
    }
}
