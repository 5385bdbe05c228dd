//! Writing a directory's manifest: walk, hash in parallel, write `manifest.json` atomically.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::entry::{Manifest, ManifestEntry};
use crate::digest::hash_file;
use crate::error::WarmupError;
use crate::files::write_atomic;
use crate::names::{MANIFEST_FILE, PARTIAL_SUFFIX, STATE_SUFFIX};

/// Whether `write_manifest` leaves a file out: hidden files, temporary files and downloads in
/// progress.
fn skipped_name(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with(PARTIAL_SUFFIX)
        || name.ends_with(STATE_SUFFIX)
        || name.ends_with(".tmp")
        || name.ends_with(".swp")
        || name.ends_with('~')
}

/// Walks `dir`, hashes every file (in parallel, one thread per core, at most 8), writes
/// `dir/manifest.json` atomically and returns the manifest.
///
/// Paths are relative to `dir`, `/`-separated and sorted. Left out: `manifest.json` at the
/// root, hidden files and directories (`.…`), temporary files (`*.tmp`, `*.swp`, `*~`) and
/// downloads in progress (`*.partial`, `*.partial.state`). Symbolic links to files are
/// followed (a Hugging Face snapshot links to its blobs); links to directories are not.
/// Blocking: call it from a blocking thread in async code.
pub fn write_manifest(dir: &Path) -> Result<Manifest, WarmupError> {
    let mut found = Vec::new();
    walk(dir, "", &mut found)?;
    found.sort();

    let next = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<usize, Result<ManifestEntry, WarmupError>>> =
        Mutex::new(BTreeMap::new());
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8)
        .min(found.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((rel, abs)) = found.get(i) else {
                    break;
                };
                let result = hash_file(abs).map(|(size, sha256)| ManifestEntry {
                    path: rel.clone(),
                    size,
                    sha256,
                });
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(i, result);
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut files = Vec::with_capacity(results.len());
    for (_, result) in results {
        files.push(result?);
    }
    let manifest = Manifest { files };
    let location = dir.join(MANIFEST_FILE).display().to_string();
    manifest.validate(&location)?;

    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| WarmupError::io(format!("serialising {location}"), io::Error::other(e)))?;
    write_atomic(&dir.join(MANIFEST_FILE), &json)
        .map_err(|e| WarmupError::io(format!("writing {location}"), e))?;
    Ok(manifest)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> Result<(), WarmupError> {
    let entries =
        fs::read_dir(dir).map_err(|e| WarmupError::io(format!("listing {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| WarmupError::io(format!("listing {}", dir.display()), e))?;
        let abs = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(WarmupError::io(
                format!("listing {}", dir.display()),
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not valid UTF-8", abs.display()),
                ),
            ));
        };
        if skipped_name(&name) || (prefix.is_empty() && name == MANIFEST_FILE) {
            continue;
        }
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let file_type = entry
            .file_type()
            .map_err(|e| WarmupError::io(format!("reading {}", abs.display()), e))?;
        if file_type.is_dir() {
            walk(&abs, &rel, out)?;
        } else if file_type.is_file() {
            out.push((rel, abs));
        } else if file_type.is_symlink() {
            // Follow links to files; leave links to directories (and dangling links) out.
            match fs::metadata(&abs) {
                Ok(meta) if meta.is_file() => out.push((rel, abs)),
                Ok(_) => {
                    tracing::warn!(path = %abs.display(), "manifest: not following a link to a directory")
                }
                Err(e) => {
                    return Err(WarmupError::io(format!("reading {}", abs.display()), e));
                }
            }
        }
    }
    Ok(())
}
