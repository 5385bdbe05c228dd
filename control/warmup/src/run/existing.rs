//! The files already in the destination: trusted, hashed, or removed and fetched again.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io;
use std::sync::{Arc, Mutex};

use tokio::task::JoinSet;

use super::verified::VerifiedRecord;
use crate::ctx::JobCtx;
use crate::digest::hash_file;
use crate::error::WarmupError;
use crate::files::remove_if_exists;
use crate::io_errors::join_error;
use crate::manifest::{Manifest, ManifestEntry};
use crate::names::{with_suffix, PARTIAL_SUFFIX, STATE_SUFFIX};
use crate::progress::WarmupState;
use crate::sync::lock;

/// Sorts the manifest's files into those already in place (skipped, counted done) and those
/// to fetch. A file under its final name with the right size is trusted when the verified
/// record matches its size, mtime, inode and sha256, else hashed; one that does not match the
/// manifest is removed (so a model server never reads it) and fetched again.
pub(super) async fn check_existing(
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
