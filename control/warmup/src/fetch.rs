//! Fetching one file: chunks in parallel into `<path>.partial`, a resume sidecar, SHA-256 of
//! the bytes written, `fsync` and an atomic rename.
//!
//! Received buffers are written with `pwritev` on the task that received them (not on a
//! blocking thread): a write into the page cache takes tens of microseconds, less than
//! handing it to another thread and back, and when the disk falls behind the kernel's dirty
//! page throttling is the backpressure the transfer needs. Callers that also serve
//! latency-sensitive requests run warmups on a runtime of their own (the control process
//! does).
//!
//! SHA-256 runs in file order. Bytes written exactly at the hash position are hashed right
//! there from the received buffers; everything else (the chunks ahead of the frontier, and
//! chunks an earlier run left) is read back from the page cache once every chunk before it
//! is finished.

use std::collections::{BTreeSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::error::is_no_space;
use crate::http::{HttpSource, RANGES_NO, RANGES_UNKNOWN};
use crate::limiter::TokenBucket;
use crate::local::LocalSource;
use crate::manifest::{hex, write_atomic, ManifestEntry, PARTIAL_SUFFIX, STATE_SUFFIX};
use crate::testing::Hooks;
use crate::{CancelToken, Progress, Tuning, WarmupError};

/// Received buffers are written once this many bytes are gathered (per range in flight).
pub(crate) const WRITE_BUF: usize = 128 << 10;
/// An early writeback (`fdatasync`) of a `.partial` starts after this many bytes of finished
/// chunks (see [`FileCtx::early_writeback`]).
const SYNC_EVERY: u64 = 64 << 20;
/// Read-back buffer of the hasher (one per file in flight, while it reads back).
const HASH_BUF: usize = 1 << 20;
/// The hasher reads at most this many finished chunks per blocking call.
const HASH_BATCH: u64 = 4;

/// Why a transfer step stopped.
#[derive(Debug)]
pub(crate) enum Fail {
    /// Worth retrying: connect error, 5xx, 408/429, reset, short read, stall.
    Transient { reason: String, connect: bool },
    /// Not worth retrying.
    Fatal(WarmupError),
    /// The job is stopping (cancelled, or another file failed).
    Stopped,
}

impl Fail {
    pub(crate) fn transient(reason: impl Into<String>) -> Self {
        Fail::Transient {
            reason: reason.into(),
            connect: false,
        }
    }
}

/// Where the bytes come from.
pub(crate) enum SourceImpl {
    Http(Box<HttpSource>),
    Local(LocalSource),
}

impl SourceImpl {
    pub(crate) fn location(&self, path: &str) -> String {
        match self {
            SourceImpl::Http(h) => h.url(path),
            SourceImpl::Local(l) => l.path(path).display().to_string(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub retries: AtomicU64,
    pub transferred: AtomicU64,
}

/// Everything the tasks of one job share.
pub(crate) struct JobCtx {
    pub dest: PathBuf,
    pub tuning: Tuning,
    pub source: SourceImpl,
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
        source: SourceImpl,
        progress: Arc<Progress>,
        hooks: Hooks,
    ) -> Self {
        let limiter = tuning.bandwidth_cap.map(TokenBucket::new);
        JobCtx {
            dest,
            tuning,
            source,
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
    fn ranges_per_file(&self) -> usize {
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

    /// Stops the job for a failure of the file `path`: fatal, or transient past its retries.
    /// `Stopped` (the job is already stopping) adds nothing.
    pub(crate) fn fail_with(&self, path: &str, f: Fail) {
        match f {
            Fail::Fatal(e) => self.fail(e),
            Fail::Transient { reason, connect } => self.fail(self.exhausted(path, reason, connect)),
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

    /// The error for a transient failure that outlived its retries.
    pub(crate) fn exhausted(&self, path: &str, reason: String, connect: bool) -> WarmupError {
        let location = self.source.location(path);
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

/// The resume sidecar `<path>.partial.state`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PartialState {
    size: u64,
    sha256: String,
    chunk_size: u64,
    /// Chunks whose bytes are all written to the `.partial` file.
    finished: BTreeSet<u64>,
}

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
    hash: Arc<Mutex<HashState>>,
}

/// SHA-256 of bytes `[0, pos)` of a file.
struct HashState {
    hasher: Sha256,
    pos: u64,
}

impl HashState {
    fn new() -> Self {
        HashState {
            hasher: Sha256::new(),
            pos: 0,
        }
    }
}

/// Hashes `bufs`, just written at `offset`, if they continue the hash exactly. Skips them
/// (they are read back later) when they do not, or when the read-back holds the state.
fn hash_in_order<B: AsRef<[u8]>>(hash: &Mutex<HashState>, offset: u64, bufs: &[B]) {
    let Ok(mut h) = hash.try_lock() else {
        return;
    };
    if h.pos != offset {
        return;
    }
    for b in bufs {
        let b = b.as_ref();
        h.hasher.update(b);
        h.pos += b.len() as u64;
    }
}

impl FileCtx {
    /// Byte range `[start, end)` of chunk `c`.
    pub(crate) fn bounds(&self, c: u64) -> (u64, u64) {
        let start = c * self.chunk_size;
        (start, (start + self.chunk_size).min(self.entry.size))
    }

    fn pop(&self) -> Option<u64> {
        lock(&self.queue).pop_front()
    }

    /// Takes every chunk nobody has started (a worker that fell back to streaming the whole
    /// file owns them from then on).
    pub(crate) fn drain(&self) -> Vec<u64> {
        lock(&self.queue).drain(..).collect()
    }

    fn queued(&self) -> usize {
        lock(&self.queue).len()
    }

    /// Marks chunk `c` finished: records it in the sidecar (atomically), then hands it to the
    /// hasher. Only called once every byte of the chunk is written.
    pub(crate) async fn chunk_finished(&self, c: u64) -> Result<(), Fail> {
        let mut state = self.state.lock().await;
        state.finished.insert(c);
        let json = serde_json::to_vec(&*state)
            .map_err(|e| Fail::Fatal(WarmupError::io("serialising state", io::Error::other(e))))?;
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

pub(crate) fn write_error(path: &str, partial: &Path, e: io::Error) -> WarmupError {
    if is_no_space(&e) {
        WarmupError::NoSpace {
            path: path.to_string(),
            partial: partial.to_path_buf(),
        }
    } else {
        WarmupError::io(format!("{path}: writing {}", partial.display()), e)
    }
}

pub(crate) fn join_error(e: tokio::task::JoinError) -> WarmupError {
    WarmupError::io("warmup task failed", io::Error::other(e.to_string()))
}

/// Gathers received buffers (without copying them) into one positioned, vectored write
/// (`pwritev`) per [`WRITE_BUF`] bytes.
pub(crate) struct Writer<'a> {
    ctx: &'a JobCtx,
    f: &'a FileCtx,
    bufs: Vec<Bytes>,
    len: usize,
    start: u64,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(ctx: &'a JobCtx, f: &'a FileCtx, start: u64) -> Self {
        Writer {
            ctx,
            f,
            bufs: Vec::new(),
            len: 0,
            start,
        }
    }

    /// The file offset of the next byte pushed.
    pub(crate) fn next_offset(&self) -> u64 {
        self.start + self.len as u64
    }

    /// Moves to `offset`, writing out what is gathered first.
    pub(crate) async fn seek(&mut self, offset: u64) -> Result<(), Fail> {
        if offset != self.next_offset() {
            self.flush().await?;
            self.start = offset;
        }
        Ok(())
    }

    pub(crate) async fn push(&mut self, data: Bytes) -> Result<(), Fail> {
        if data.is_empty() {
            return Ok(());
        }
        self.len += data.len();
        self.bufs.push(data);
        // Well under IOV_MAX (1024), even for a server that sends tiny frames.
        if self.len >= WRITE_BUF || self.bufs.len() >= 256 {
            self.flush().await?;
        }
        Ok(())
    }

    pub(crate) async fn flush(&mut self) -> Result<(), Fail> {
        if self.len == 0 {
            return Ok(());
        }
        let n = std::mem::take(&mut self.len) as u64;
        let res = self
            .f
            .write_and_hash(&self.ctx.hooks, &self.bufs, self.start);
        self.bufs.clear();
        res?;
        self.start += n;
        self.ctx.account(n);
        Ok(())
    }
}

/// Writes `bufs` at `offset` of the `.partial` with `pwritev`, continuing after short writes,
/// after the test hook.
fn write_vectored<B: AsRef<[u8]>>(
    hooks: &Hooks,
    file: &File,
    path: &str,
    partial: &Path,
    bufs: &[B],
    mut offset: u64,
) -> Result<(), Fail> {
    let fail = |e: io::Error| Fail::Fatal(write_error(path, partial, e));
    if let Some(hook) = &hooks.before_write {
        let len = bufs.iter().map(|b| b.as_ref().len()).sum();
        hook(path, offset, len).map_err(fail)?;
    }
    let mut slices: Vec<io::IoSlice<'_>> =
        bufs.iter().map(|b| io::IoSlice::new(b.as_ref())).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let written = match rustix::io::pwritev(file, rest, offset) {
            Ok(0) => return Err(fail(io::Error::from(io::ErrorKind::WriteZero))),
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(fail(e.into())),
        };
        offset += written as u64;
        io::IoSlice::advance_slices(&mut rest, written);
    }
    Ok(())
}

/// How a chunk fetch ended.
pub(crate) enum Done {
    /// The chunk asked for is written (and marked finished by the caller).
    Chunk,
    /// The server ignored `Range`; the worker streamed the whole file and marked every chunk it
    /// owned.
    Whole,
}

/// Fetches one file (resuming from its sidecar), verifies it and renames it into place.
/// Returns the bytes resumed from an earlier run.
pub(crate) async fn fetch_file(ctx: &Arc<JobCtx>, entry: &ManifestEntry) -> Result<u64, Fail> {
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
        let hash = Arc::new(Mutex::new(HashState::new()));
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let pending: VecDeque<u64> = (0..nchunks)
            .filter(|&c| !finished.get(c as usize).copied().unwrap_or(false))
            .collect();
        let f = Arc::new(FileCtx {
            entry: entry.clone(),
            partial: partial.clone(),
            state_path: state_path.clone(),
            file: file.clone(),
            chunk_size,
            queue: Mutex::new(pending),
            state: tokio::sync::Mutex::new(state),
            done_tx,
            unsynced: AtomicU64::new(0),
            syncing: Arc::new(AtomicBool::new(false)),
            hash: hash.clone(),
        });
        let hasher = tokio::spawn(hash_chunks(
            file.clone(),
            hash,
            entry.size,
            chunk_size,
            finished,
            done_rx,
            ctx.abort.clone(),
        ));
        run_workers(ctx, &f).await;
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
                    location: ctx.source.location(&entry.path),
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

/// Runs the range workers of a file to the end; a fatal error stops the whole job.
async fn run_workers(ctx: &Arc<JobCtx>, f: &Arc<FileCtx>) {
    let mut workers = JoinSet::new();
    if f.queued() == 0 {
        return;
    }
    let ranges = match &ctx.source {
        SourceImpl::Http(h) => h.ranges(),
        SourceImpl::Local(_) => crate::http::RANGES_YES,
    };
    if ranges == RANGES_NO {
        // Known not to support ranges: one stream of the whole file.
        let (ctx2, f2) = (ctx.clone(), f.clone());
        workers.spawn(async move {
            let owned = f2
                .drain()
                .into_iter()
                .map(|c| (c, f2.bounds(c).0))
                .collect();
            match &ctx2.source {
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
                workers.spawn(range_worker(ctx.clone(), f.clone(), Some((first, tx))));
                spawned += 1;
                let _ = rx.await;
            }
        }
        let want = ctx.ranges_per_file().min(f.queued() + spawned);
        for _ in spawned..want {
            workers.spawn(range_worker(ctx.clone(), f.clone(), None));
        }
    }
    while let Some(res) = workers.join_next().await {
        match res {
            Ok(Ok(())) => {}
            Ok(Err(fail)) => ctx.fail_with(&f.entry.path, fail),
            Err(e) => ctx.fail(join_error(e)),
        }
    }
}

async fn range_worker(
    ctx: Arc<JobCtx>,
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
        match fetch_chunk(&ctx, &f, chunk, &mut probe).await? {
            Done::Chunk => {}
            Done::Whole => return Ok(()),
        }
    }
}

/// One chunk, with retries of transient errors that continue from the last byte written.
async fn fetch_chunk(
    ctx: &JobCtx,
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
        let res = match &ctx.source {
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
                    return Err(Fail::Fatal(ctx.exhausted(&f.entry.path, reason, connect)));
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

/// SHA-256 of the file in order, finished as its chunks finish: reads back, at most
/// [`HASH_BATCH`] chunks per blocking call, whatever the writers did not hash in order, up to
/// the end of the finished chunks. `None` if the job stopped first.
async fn hash_chunks(
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

fn mark(finished: &mut [bool], c: u64) {
    if let Some(slot) = finished.get_mut(c as usize) {
        *slot = true;
    }
}

/// Locks `m`, recovering the data of a poisoned mutex.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens (or creates and preallocates) `<path>.partial`; returns it with the chunks an earlier
/// run finished, if its sidecar matches this manifest entry and chunk size.
fn open_partial(
    entry: &ManifestEntry,
    partial: &Path,
    state_path: &Path,
    chunk_size: u64,
) -> Result<(File, PartialState), WarmupError> {
    if let Some(parent) = partial.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| WarmupError::io(format!("creating {}", parent.display()), e))?;
    }
    let state = load_state(entry, partial, state_path, chunk_size);
    let resumed = state.is_some();
    if !resumed {
        remove_if_exists(partial);
        remove_if_exists(state_path);
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(partial)
        .map_err(|e| write_error(&entry.path, partial, e))?;
    crate::disk::preallocate(&file, entry.size)
        .map_err(|e| write_error(&entry.path, partial, e))?;
    let state = match state {
        Some(state) => state,
        None => {
            let state = PartialState {
                size: entry.size,
                sha256: entry.sha256.clone(),
                chunk_size,
                finished: BTreeSet::new(),
            };
            let json = serde_json::to_vec(&state)
                .map_err(|e| WarmupError::io("serialising state", io::Error::other(e)))?;
            write_atomic(state_path, &json).map_err(|e| write_error(&entry.path, partial, e))?;
            state
        }
    };
    Ok((file, state))
}

fn load_state(
    entry: &ManifestEntry,
    partial: &Path,
    state_path: &Path,
    chunk_size: u64,
) -> Option<PartialState> {
    let bytes = fs::read(state_path).ok()?;
    let state: PartialState = match serde_json::from_slice(&bytes) {
        Ok(state) => state,
        Err(e) => {
            tracing::warn!(path = %entry.path, error = %e, "warmup: unreadable resume state, starting over");
            return None;
        }
    };
    let nchunks = entry.size.div_ceil(chunk_size);
    let partial_len = fs::metadata(partial).ok()?.len();
    if state.size != entry.size
        || !state.sha256.eq_ignore_ascii_case(&entry.sha256)
        || state.chunk_size != chunk_size
        || state.finished.iter().any(|&c| c >= nchunks)
        || partial_len != entry.size
    {
        tracing::warn!(path = %entry.path, "warmup: resume state does not match the manifest entry, starting over");
        return None;
    }
    Some(state)
}

/// `fsync` the verified `.partial`, rename it into place, drop the sidecar, `fsync` the
/// directory.
fn finalize(
    path: &str,
    file: &File,
    partial: &Path,
    state_path: &Path,
    final_path: &Path,
) -> Result<(), WarmupError> {
    file.sync_all().map_err(|e| write_error(path, partial, e))?;
    fs::rename(partial, final_path).map_err(|e| {
        WarmupError::io(
            format!("{path}: renaming {} into place", partial.display()),
            e,
        )
    })?;
    remove_if_exists(state_path);
    if let Some(parent) = final_path.parent() {
        crate::disk::sync_dir(parent)
            .map_err(|e| WarmupError::io(format!("{path}: syncing {}", parent.display()), e))?;
    }
    Ok(())
}

pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

pub(crate) fn remove_if_exists(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "warmup: could not remove");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ctx(tuning: Tuning) -> JobCtx {
        JobCtx::new(
            PathBuf::new(),
            tuning,
            SourceImpl::Local(LocalSource::new(Path::new("."))),
            Arc::new(Progress::new()),
            Hooks::default(),
        )
    }

    #[test]
    fn connections_are_shared_by_the_files_in_flight() {
        let tuned = |parallel_files, parallel_ranges, max_connections| Tuning {
            parallel_files,
            parallel_ranges,
            max_connections,
            ..Tuning::default()
        };
        let c = ctx(tuned(4, 8, 16));
        for (left, ranges) in [(10, 4), (4, 4), (3, 5), (2, 8), (1, 8)] {
            c.progress.set_totals(left, 0);
            assert_eq!(c.ranges_per_file(), ranges, "{left} files left");
        }
        // Fewer connections than files: fewer files at once, one range each.
        let t = tuned(4, 8, 2);
        assert_eq!(t.files_in_flight(), 2);
        let c = ctx(t);
        c.progress.set_totals(10, 0);
        assert_eq!(c.ranges_per_file(), 1);
        c.progress.set_totals(1, 0);
        assert_eq!(c.ranges_per_file(), 2);
        // parallel_ranges is the per-file cap.
        let c = ctx(tuned(2, 3, 100));
        c.progress.set_totals(5, 0);
        assert_eq!(c.ranges_per_file(), 3);
        c.progress.file_done();
        c.progress.file_done();
        c.progress.file_done();
        c.progress.file_done();
        c.progress.file_done();
        c.progress.file_done();
        assert_eq!(c.progress.files_left(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashes_in_order_as_written_and_reads_back_the_rest() {
        let dir =
            std::env::temp_dir().join(format!("infergate-warmup-hash-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.partial");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i ^ (i >> 7)) as u8).collect();
        let (size, chunk) = (data.len() as u64, 64 << 10);
        let file = Arc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .unwrap(),
        );
        file.set_len(size).unwrap();
        let hash = Arc::new(Mutex::new(HashState::new()));
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(hash_chunks(
            file.clone(),
            hash.clone(),
            size,
            chunk,
            vec![false; 5],
            rx,
            CancelToken::new(),
        ));
        let write = |from: u64, to: u64| {
            let bytes = Bytes::copy_from_slice(&data[from as usize..to as usize]);
            write_vectored(
                &Hooks::default(),
                &file,
                "f",
                &path,
                std::slice::from_ref(&bytes),
                from,
            )
            .unwrap();
            hash_in_order(&hash, from, &[bytes]);
            lock(&hash).pos
        };
        // Ahead of the hash: written, not hashed.
        assert_eq!(write(2 * chunk, 3 * chunk), 0);
        assert_eq!(write(4 * chunk, size), 0);
        // At the hash position: hashed as written, in pieces.
        assert_eq!(write(0, 1000), 1000);
        assert_eq!(write(1000, chunk), chunk);
        assert_eq!(write(chunk, chunk + 5), chunk + 5);
        // Finish chunks out of order; the hasher reads back what was not hashed.
        let rest = write(chunk + 5, 2 * chunk);
        assert!(rest == 2 * chunk, "{rest}");
        for c in [4, 2, 0, 1] {
            tx.send(c).unwrap();
        }
        assert_eq!(write(3 * chunk, 4 * chunk) % chunk, 0);
        tx.send(3).unwrap();
        let digest = task.await.unwrap().unwrap().unwrap();
        assert_eq!(digest, hex(&Sha256::digest(&data)));
        assert_eq!(lock(&hash).pos, size);

        // A job that stops before every chunk is finished has no digest.
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(hash_chunks(
            file,
            Arc::new(Mutex::new(HashState::new())),
            size,
            chunk,
            vec![false; 5],
            rx,
            CancelToken::new(),
        ));
        tx.send(0).unwrap();
        drop(tx);
        assert_eq!(task.await.unwrap().unwrap(), None);
        let _ = fs::remove_dir_all(&dir);
    }
}
