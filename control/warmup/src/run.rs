//! The job: manifest, files already in place, free space, parallel fetches, pre-read.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Instant, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::fetch::{
    fetch_file, join_error, lock, remove_if_exists, with_suffix, JobCtx, SourceImpl,
};
use crate::http::HttpSource;
use crate::local::LocalSource;
use crate::manifest::{
    hash_file, write_atomic, Manifest, ManifestEntry, LOCK_FILE, PARTIAL_SUFFIX, STATE_SUFFIX,
    VERIFIED_RECORD,
};
use crate::testing::Hooks;
use crate::{CancelToken, Progress, Source, WarmupError, WarmupJob, WarmupState};

/// Buffer of the page-cache pre-read (one per file being read).
const PREREAD_BUF: usize = 2 << 20;

/// What a finished warmup did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The job's model.
    pub model: String,
    /// The job's version.
    pub version: String,
    /// Files in the manifest.
    pub files_total: u64,
    /// Files fetched (wholly or partly) by this run.
    pub files_fetched: u64,
    /// Files already in place and verified, not fetched.
    pub files_skipped: u64,
    /// Sum of the manifest's sizes.
    pub bytes_total: u64,
    /// Bytes moved from the source by this run.
    pub bytes_transferred: u64,
    /// Bytes of chunks finished by an earlier, interrupted run and not fetched again.
    pub bytes_resumed: u64,
    /// Bytes of the files already in place.
    pub bytes_skipped: u64,
    /// Bytes read back into the page cache (`tuning.preread`), else 0.
    pub preread_bytes: u64,
    /// Bytes of the files in the page cache right after the pre-read (`tuning.preread` on a
    /// file system that supports `RWF_NOWAIT` reads), else `None`.
    pub resident_bytes: Option<u64>,
    /// Retries of transient errors and re-fetches after a sha256 mismatch.
    pub retries: u64,
    /// Wall-clock seconds of the run.
    pub elapsed_secs: f64,
}

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

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run_job(
    job: &WarmupJob,
    progress: &Arc<Progress>,
    cancel: &CancelToken,
    hooks: Hooks,
) -> Result<Report, WarmupError> {
    let started = Instant::now();
    job.tuning.validate()?;
    let source = match &job.source {
        Source::Http(url) => {
            SourceImpl::Http(Box::new(HttpSource::new(url, job.ca_file.as_deref())?))
        }
        Source::Local(dir) => SourceImpl::Local(LocalSource::new(dir)),
    };
    tokio::fs::create_dir_all(&job.dest)
        .await
        .map_err(|e| WarmupError::io(format!("creating {}", job.dest.display()), e))?;
    // One job per destination at a time; the lock goes with the file handle.
    let _lock = match crate::disk::try_lock(&job.dest.join(LOCK_FILE)) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            return Err(WarmupError::Busy {
                dest: job.dest.clone(),
            })
        }
        Err(e) => {
            return Err(WarmupError::io(
                format!("locking {}", job.dest.join(LOCK_FILE).display()),
                e,
            ))
        }
    };
    if let Source::Local(dir) = &job.source {
        if let (Ok(a), Ok(b)) = (fs::canonicalize(dir), fs::canonicalize(&job.dest)) {
            if a == b {
                return Err(WarmupError::InvalidJob(format!(
                    "source and dest are the same directory ({})",
                    a.display()
                )));
            }
        }
    }

    let ctx = Arc::new(JobCtx::new(
        job.dest.clone(),
        job.tuning.clone(),
        source,
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
    let fetched = match &ctx.source {
        SourceImpl::Http(h) => h.fetch_manifest(&ctx).await,
        SourceImpl::Local(l) => l.read_manifest().await,
    };
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
        let queue = Arc::new(Mutex::new(VecDeque::from(to_fetch)));
        let mut workers = JoinSet::new();
        for _ in 0..job.tuning.files_in_flight().min(files_fetched as usize) {
            let (ctx, queue, record) = (ctx.clone(), queue.clone(), record.clone());
            workers.spawn(async move {
                let mut resumed = 0;
                loop {
                    if ctx.abort.is_cancelled() {
                        break;
                    }
                    let next = lock(&queue).pop_front();
                    let Some(entry) = next else { break };
                    match fetch_file(&ctx, &entry).await {
                        Ok(r) => {
                            resumed += r;
                            ctx.progress.file_done();
                            if let Err(e) = record_verified(&ctx.dest, &record, &entry).await {
                                tracing::warn!(error = %e, "warmup: could not update the verified record");
                            }
                        }
                        Err(fail) => {
                            ctx.fail_with(&entry.path, fail);
                            break;
                        }
                    }
                }
                resumed
            });
        }
        while let Some(res) = workers.join_next().await {
            match res {
                Ok(r) => bytes_resumed += r,
                Err(e) => ctx.fail(join_error(e)),
            }
        }
        if ctx.abort.is_cancelled() {
            return Err(stopped(&ctx));
        }
    }

    // Keep only this manifest's files in the record.
    {
        let paths: Vec<String> = manifest.files.iter().map(|e| e.path.clone()).collect();
        let (record, dest) = (record.clone(), job.dest.clone());
        let saved = tokio::task::spawn_blocking(move || {
            let mut rec = lock(&record);
            rec.files.retain(|p, _| paths.contains(p));
            rec.save(&dest)
        })
        .await
        .map_err(join_error)?;
        if let Err(e) = saved {
            tracing::warn!(error = %e, "warmup: could not write the verified record");
        }
    }

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

/// Sorts the manifest's files into those already in place (skipped, counted done) and those
/// to fetch. A file under its final name with the right size is trusted when the verified
/// record matches its size, mtime, inode and sha256, else hashed; one that does not match the
/// manifest is removed (so a model server never reads it) and fetched again.
async fn check_existing(
    ctx: &Arc<JobCtx>,
    manifest: &Manifest,
    record: &Arc<Mutex<VerifiedRecord>>,
) -> Result<Vec<ManifestEntry>, WarmupError> {
    enum Check {
        Missing,
        Trusted,
        Hash,
    }
    let mut to_fetch = Vec::new();
    let mut to_hash = VecDeque::new();
    for entry in &manifest.files {
        let final_path = ctx.dest.join(&entry.path);
        let check = match fs::metadata(&final_path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Check::Missing,
            Err(e) => {
                return Err(WarmupError::io(
                    format!("reading {}", final_path.display()),
                    e,
                ));
            }
            Ok(meta) if meta.is_dir() => {
                return Err(WarmupError::io(
                    format!("{}: in the way of a manifest file", final_path.display()),
                    io::Error::other("is a directory"),
                ));
            }
            Ok(meta) if meta.len() != entry.size => {
                tracing::warn!(path = %entry.path, "warmup: existing file has the wrong size, replacing it");
                remove_if_exists(&final_path);
                Check::Missing
            }
            Ok(meta) => {
                let trusted = lock(record).matches(&entry.path, &meta, &entry.sha256);
                if trusted {
                    Check::Trusted
                } else {
                    Check::Hash
                }
            }
        };
        match check {
            Check::Missing => to_fetch.push(entry.clone()),
            Check::Trusted => skip(ctx, entry),
            Check::Hash => to_hash.push_back(entry.clone()),
        }
    }
    if to_hash.is_empty() {
        return Ok(to_fetch);
    }

    ctx.progress.set_state(WarmupState::Verifying);
    let queue = Arc::new(Mutex::new(to_hash));
    let mismatched = Arc::new(Mutex::new(Vec::new()));
    let mut workers = JoinSet::new();
    for _ in 0..ctx.tuning.parallel_files {
        let (ctx, queue, mismatched, record) = (
            ctx.clone(),
            queue.clone(),
            mismatched.clone(),
            record.clone(),
        );
        workers.spawn_blocking(move || -> Result<(), WarmupError> {
            loop {
                if ctx.abort.is_cancelled() {
                    return Ok(());
                }
                let next = lock(&queue).pop_front();
                let Some(entry) = next else { return Ok(()) };
                let final_path = ctx.dest.join(&entry.path);
                let (size, sha) = hash_file(&final_path)?;
                if size == entry.size && sha == entry.sha256 {
                    skip(&ctx, &entry);
                    if let Ok(meta) = fs::metadata(&final_path) {
                        lock(&record)
                            .insert(&entry.path, &meta, &entry.sha256);
                    }
                } else {
                    tracing::warn!(path = %entry.path, "warmup: existing file does not match the manifest's sha256, replacing it");
                    remove_if_exists(&final_path);
                    lock(&mismatched)
                        .push(entry);
                }
            }
        });
    }
    while let Some(res) = workers.join_next().await {
        res.map_err(join_error)??;
    }
    let mismatched = std::mem::take(&mut *lock(&mismatched));
    to_fetch.extend(mismatched);
    // Keep the manifest's order.
    let order: BTreeMap<&str, usize> = manifest
        .files
        .iter()
        .enumerate()
        .map(|(i, e)| (e.path.as_str(), i))
        .collect();
    to_fetch.sort_by_key(|e| order.get(e.path.as_str()).copied().unwrap_or(usize::MAX));
    Ok(to_fetch)
}

/// A file already in place: count it, and drop leftovers of an earlier download.
fn skip(ctx: &JobCtx, entry: &ManifestEntry) {
    ctx.progress.add_done(entry.size);
    ctx.progress.file_done();
    let final_path = ctx.dest.join(&entry.path);
    remove_if_exists(&with_suffix(&final_path, PARTIAL_SUFFIX));
    remove_if_exists(&with_suffix(&final_path, STATE_SUFFIX));
}

/// Fails before any transfer when the destination lacks room for what is left to write
/// (file sizes less the space a resumable `.partial` already holds).
async fn check_space(dest: &Path, to_fetch: &[ManifestEntry]) -> Result<(), WarmupError> {
    let dest = dest.to_path_buf();
    let entries = to_fetch.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut needed = 0u64;
        for entry in &entries {
            let partial = with_suffix(&dest.join(&entry.path), PARTIAL_SUFFIX);
            let held = fs::metadata(&partial)
                .map(|m| m.blocks().saturating_mul(512))
                .unwrap_or(0);
            needed = needed.saturating_add(entry.size.saturating_sub(held));
        }
        let available = crate::disk::available_space(&dest)
            .map_err(|e| WarmupError::io(format!("statvfs {}", dest.display()), e))?;
        if needed > available {
            return Err(WarmupError::InsufficientSpace {
                dest,
                needed,
                available,
            });
        }
        Ok(())
    })
    .await
    .map_err(join_error)?
}

/// Reads every file once, sequentially, so that it sits in the page cache; then counts how
/// much of it is resident ([`crate::disk::resident_bytes`]). Returns (bytes read, bytes
/// resident), the latter `None` if any file's file system cannot tell.
async fn preread(
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

/// Adds a file just verified to the record and saves it. The lock is held through the save:
/// saves from several file workers share one temporary file, so they must not overlap.
async fn record_verified(
    dest: &Path,
    record: &Arc<Mutex<VerifiedRecord>>,
    entry: &ManifestEntry,
) -> io::Result<()> {
    let (dest, record) = (dest.to_path_buf(), record.clone());
    let (path, sha256) = (entry.path.clone(), entry.sha256.clone());
    tokio::task::spawn_blocking(move || {
        let meta = fs::metadata(dest.join(&path))?;
        let mut rec = lock(&record);
        rec.insert(&path, &meta, &sha256);
        rec.save(&dest)
    })
    .await
    .map_err(|e| io::Error::other(e.to_string()))?
}

/// `<dest>/.infergate-verified.json`: files this crate verified, keyed by path, with the size,
/// mtime (ns), inode and sha256 they had then. A file whose size, mtime and inode still match
/// is not hashed again.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct VerifiedRecord {
    files: BTreeMap<String, VerifiedFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct VerifiedFile {
    size: u64,
    mtime_ns: u64,
    ino: u64,
    sha256: String,
}

impl VerifiedFile {
    fn of(meta: &fs::Metadata, sha256: &str) -> Option<Self> {
        let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
        Some(VerifiedFile {
            size: meta.len(),
            mtime_ns: u64::try_from(mtime.as_nanos()).ok()?,
            ino: meta.ino(),
            sha256: sha256.to_string(),
        })
    }
}

impl VerifiedRecord {
    fn load(dest: &Path) -> Self {
        fs::read(dest.join(VERIFIED_RECORD))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn matches(&self, path: &str, meta: &fs::Metadata, sha256: &str) -> bool {
        match (self.files.get(path), VerifiedFile::of(meta, sha256)) {
            (Some(recorded), Some(now)) => *recorded == now,
            _ => false,
        }
    }

    fn insert(&mut self, path: &str, meta: &fs::Metadata, sha256: &str) {
        if let Some(v) = VerifiedFile::of(meta, sha256) {
            self.files.insert(path.to_string(), v);
        }
    }

    fn save(&self, dest: &Path) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        write_atomic(&dest.join(VERIFIED_RECORD), &json)
    }
}
