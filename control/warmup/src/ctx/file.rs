//! One file being fetched: its chunks still to fetch, its sidecar, its early writebacks.
//!
//! Received buffers are written with `pwritev` on the task that received them (not on a
//! blocking thread): a write into the page cache takes tens of microseconds, less than
//! handing it to another thread and back, and when the disk falls behind the kernel's dirty
//! page throttling is the backpressure the transfer needs. Callers that also serve
//! latency-sensitive requests run warmups on a runtime of their own (the control process
//! does).

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::hash::{hash_in_order, HashState};
use super::write::write_vectored;
use crate::files::write_atomic;
use crate::hooks::Hooks;
use crate::io_errors::{join_error, write_error};
use crate::manifest::ManifestEntry;
use crate::outcome::Fail;
use crate::partial::PartialState;
use crate::sync::lock;

/// An early writeback (`fdatasync`) of a `.partial` starts after this many bytes of finished
/// chunks (see [`FileCtx::chunk_finished`]).
const SYNC_EVERY: u64 = 64 << 20;

/// One file being fetched.
pub(crate) struct FileCtx {
    pub entry: ManifestEntry,
    pub partial: PathBuf,
    state_path: PathBuf,
    pub file: Arc<File>,
    pub chunk_size: u64,
    queue: Mutex<VecDeque<u64>>,
    state: tokio::sync::Mutex<PartialState>,
    done_tx: mpsc::UnboundedSender<u64>,
    /// Bytes of chunks finished since the last early writeback.
    unsynced: AtomicU64,
    /// An early writeback (`fdatasync`) is running.
    syncing: Arc<AtomicBool>,
    /// SHA-256 of the file's first bytes.
    pub hash: Arc<Mutex<HashState>>,
}

impl FileCtx {
    /// The file `entry`, written to `partial` (open as `file`) in chunks of `chunk_size`, with
    /// its sidecar `state_path` holding `state`: every chunk not finished in `state` is queued,
    /// and each chunk finished from now on is sent on `done_tx`.
    pub(crate) fn new(
        entry: ManifestEntry,
        partial: PathBuf,
        state_path: PathBuf,
        file: Arc<File>,
        chunk_size: u64,
        state: PartialState,
        done_tx: mpsc::UnboundedSender<u64>,
    ) -> Self {
        let pending: VecDeque<u64> = (0..entry.size.div_ceil(chunk_size))
            .filter(|c| !state.finished.contains(c))
            .collect();
        FileCtx {
            entry,
            partial,
            state_path,
            file,
            chunk_size,
            queue: Mutex::new(pending),
            state: tokio::sync::Mutex::new(state),
            done_tx,
            unsynced: AtomicU64::new(0),
            syncing: Arc::new(AtomicBool::new(false)),
            hash: Arc::new(Mutex::new(HashState::new())),
        }
    }

    /// Byte range `[start, end)` of chunk `c`.
    pub(crate) fn bounds(&self, c: u64) -> (u64, u64) {
        let start = c * self.chunk_size;
        (start, (start + self.chunk_size).min(self.entry.size))
    }

    /// The next chunk nobody has started.
    pub(crate) fn pop(&self) -> Option<u64> {
        lock(&self.queue).pop_front()
    }

    /// Takes every chunk nobody has started (a worker that fell back to streaming the whole
    /// file owns them from then on).
    pub(crate) fn drain(&self) -> Vec<u64> {
        lock(&self.queue).drain(..).collect()
    }

    /// How many chunks nobody has started.
    pub(crate) fn queued(&self) -> usize {
        lock(&self.queue).len()
    }

    /// Marks chunk `c` finished: records it in the sidecar (atomically), then hands it to the
    /// hasher. Only called once every byte of the chunk is written.
    pub(crate) async fn chunk_finished(&self, c: u64) -> Result<(), Fail> {
        let mut state = self.state.lock().await;
        state.finished.insert(c);
        let json = state.to_json().map_err(Fail::Fatal)?;
        let path = self.state_path.clone();
        let res = tokio::task::spawn_blocking(move || write_atomic(&path, &json)).await;
        drop(state);
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(self.write_error(e)),
            Err(e) => return Err(Fail::Fatal(join_error(e))),
        }
        let _ = self.done_tx.send(c);
        self.early_writeback(c);
        Ok(())
    }

    /// Every [`SYNC_EVERY`] bytes of finished chunks, starts an `fdatasync` of the `.partial` on
    /// a blocking thread (not awaited), so the disk writes overlap the transfer instead of all
    /// waiting for the final `fsync`. Errors are left to the final `fsync`, which reports them.
    fn early_writeback(&self, c: u64) {
        let (start, end) = self.bounds(c);
        let pending = self.unsynced.fetch_add(end - start, Ordering::Relaxed) + (end - start);
        if pending < SYNC_EVERY || self.syncing.swap(true, Ordering::AcqRel) {
            return;
        }
        self.unsynced.store(0, Ordering::Relaxed);
        let (file, syncing) = (self.file.clone(), self.syncing.clone());
        tokio::task::spawn_blocking(move || {
            let _ = file.sync_data();
            syncing.store(false, Ordering::Release);
        });
    }

    /// The failure for a write into this file's `.partial`.
    pub(crate) fn write_error(&self, e: io::Error) -> Fail {
        Fail::Fatal(write_error(&self.entry.path, &self.partial, e))
    }

    /// Writes `bufs` at `offset` (on this thread: see the module's documentation), then
    /// hashes them if they continue the hash.
    pub(crate) fn write_and_hash<B: AsRef<[u8]>>(
        &self,
        hooks: &Hooks,
        bufs: &[B],
        offset: u64,
    ) -> Result<(), Fail> {
        write_vectored(
            hooks,
            &self.file,
            &self.entry.path,
            &self.partial,
            bufs,
            offset,
        )?;
        hash_in_order(&self.hash, offset, bufs);
        Ok(())
    }
}
