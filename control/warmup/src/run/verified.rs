//! The record of the files this crate verified in a destination, so they are not hashed again.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::error::WarmupError;
use crate::files::write_atomic;
use crate::io_errors::join_error;
use crate::manifest::{Manifest, ManifestEntry};
use crate::names::VERIFIED_RECORD;
use crate::sync::lock;

/// Adds a file just verified to the record and saves it. The lock is held through the save:
/// saves from several file workers share one temporary file, so they must not overlap.
pub(super) async fn record_verified(
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

/// Keeps only the manifest's files in the record and saves it; a failed save is logged.
pub(super) async fn keep_only(
    dest: &Path,
    record: &Arc<Mutex<VerifiedRecord>>,
    manifest: &Manifest,
) -> Result<(), WarmupError> {
    let paths: Vec<String> = manifest.files.iter().map(|e| e.path.clone()).collect();
    let (record, dest) = (record.clone(), dest.to_path_buf());
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
    Ok(())
}

/// `<dest>/.infergate-verified.json`: files this crate verified, keyed by path, with the size,
/// mtime (ns), inode and sha256 they had then. A file whose size, mtime and inode still match
/// is not hashed again.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct VerifiedRecord {
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
    pub(super) fn load(dest: &Path) -> Self {
        fs::read(dest.join(VERIFIED_RECORD))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub(super) fn matches(&self, path: &str, meta: &fs::Metadata, sha256: &str) -> bool {
        match (self.files.get(path), VerifiedFile::of(meta, sha256)) {
            (Some(recorded), Some(now)) => *recorded == now,
            _ => false,
        }
    }

    pub(super) fn insert(&mut self, path: &str, meta: &fs::Metadata, sha256: &str) {
        if let Some(v) = VerifiedFile::of(meta, sha256) {
            self.files.insert(path.to_string(), v);
        }
    }

    pub(super) fn save(&self, dest: &Path) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        write_atomic(&dest.join(VERIFIED_RECORD), &json)
    }
}
