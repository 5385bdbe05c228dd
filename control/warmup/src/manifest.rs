//! The manifest: the list of a model version's files with their sizes and SHA-256.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::WarmupError;

/// The manifest's file name at the root of a source (`<base URL>/manifest.json` or
/// `<dir>/manifest.json`).
pub const MANIFEST_FILE: &str = "manifest.json";

/// Suffix of the temporary file a fetch writes before the atomic rename.
pub(crate) const PARTIAL_SUFFIX: &str = ".partial";
/// Suffix of the resume sidecar next to a `.partial` file.
pub(crate) const STATE_SUFFIX: &str = ".partial.state";
/// The record of verified files in a destination (see `docs/warmup.md`).
pub(crate) const VERIFIED_RECORD: &str = ".infergate-verified.json";
/// The lock file that keeps two jobs off one destination.
pub(crate) const LOCK_FILE: &str = ".infergate-warmup.lock";

const HASH_BUF: usize = 1 << 20;

/// A model version's files: `{"files":[{"path":"…","size":…,"sha256":"<hex>"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The files, sorted by path when written by [`write_manifest`].
    pub files: Vec<ManifestEntry>,
}

/// One file of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// Relative path with `/` separators; no `..`, `.`, empty component or leading `/`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, 64 hex digits (lower case once parsed).
    pub sha256: String,
}

impl Manifest {
    /// Parses and validates a manifest (see [`Manifest::validate`]); SHA-256 digests are
    /// normalised to lower case. `location` (URL or path) is named in errors.
    pub fn from_slice(bytes: &[u8], location: &str) -> Result<Manifest, WarmupError> {
        let mut manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| WarmupError::InvalidManifest {
                location: location.to_string(),
                reason: format!("not a valid manifest: {e}"),
            })?;
        for entry in &mut manifest.files {
            entry.sha256.make_ascii_lowercase();
        }
        manifest.validate(location)?;
        Ok(manifest)
    }

    /// Checks every entry: a safe relative path (no absolute path, no `..`/`.`/empty
    /// component, no backslash or NUL, none of the names the warmup itself uses: `manifest.json`,
    /// `.infergate-verified.json`, `*.partial`, `*.partial.state`), a 64-hex-digit sha256, no
    /// duplicate, and no path that is both a file and a directory. The error names the entry.
    pub fn validate(&self, location: &str) -> Result<(), WarmupError> {
        let bad = |i: usize, path: &str, reason: String| WarmupError::InvalidManifest {
            location: location.to_string(),
            reason: format!("entry {i} ({path:?}): {reason}"),
        };
        let mut seen = HashSet::new();
        for (i, entry) in self.files.iter().enumerate() {
            check_path(&entry.path).map_err(|r| bad(i, &entry.path, r))?;
            if entry.sha256.len() != 64 || !entry.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(
                    i,
                    &entry.path,
                    format!("sha256 must be 64 hex digits, got {:?}", entry.sha256),
                ));
            }
            if !seen.insert(entry.path.as_str()) {
                return Err(bad(i, &entry.path, "listed twice".to_string()));
            }
        }
        // A path that is also a directory of another entry ("a" and "a/b") cannot be laid out.
        for (i, entry) in self.files.iter().enumerate() {
            let mut prefix = entry.path.as_str();
            while let Some(cut) = prefix.rfind('/') {
                prefix = &prefix[..cut];
                if seen.contains(prefix) {
                    return Err(bad(
                        i,
                        &entry.path,
                        format!("{prefix:?} is listed as a file and used as a directory"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The sum of all file sizes.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("path is empty".into());
    }
    if path.starts_with('/') {
        return Err("path must be relative, not absolute".into());
    }
    if path.contains('\\') || path.contains('\0') {
        return Err("path must use '/' separators and contain no NUL".into());
    }
    for component in path.split('/') {
        match component {
            "" => return Err("path has an empty component ('//' or a trailing '/')".into()),
            "." | ".." => return Err("path must not contain '.' or '..' components".into()),
            _ => {}
        }
    }
    if path == MANIFEST_FILE || path == VERIFIED_RECORD || path == LOCK_FILE {
        return Err(format!("{path:?} is reserved for the warmup itself"));
    }
    if path.ends_with(PARTIAL_SUFFIX) || path.ends_with(STATE_SUFFIX) {
        return Err(
            "names ending in .partial or .partial.state are reserved for downloads in progress"
                .into(),
        );
    }
    Ok(())
}

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

/// SHA-256 and size of a whole file, read sequentially.
pub(crate) fn hash_file(path: &Path) -> Result<(u64, String), WarmupError> {
    let context = || format!("hashing {}", path.display());
    let mut file = fs::File::open(path).map_err(|e| WarmupError::io(context(), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; HASH_BUF];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(WarmupError::io(context(), e)),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex(&hasher.finalize())))
}

/// Lower-case hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Writes `path` through a hidden temporary file and a rename, so readers see the old or the
/// new content, never a torn one.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("file")
        .to_string();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(data)?;
    }
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> ManifestEntry {
        ManifestEntry {
            path: path.into(),
            size: 1,
            sha256: "a".repeat(64),
        }
    }

    #[test]
    fn rejects_unsafe_paths_naming_the_entry() {
        for (path, needle) in [
            ("/etc/passwd", "absolute"),
            ("../x", "'..'"),
            ("a/../../x", "'..'"),
            ("a//b", "empty component"),
            ("a/", "empty component"),
            ("./a", "'.'"),
            ("", "empty"),
            ("a\\b", "separators"),
            ("manifest.json", "reserved"),
            ("w.safetensors.partial", "reserved"),
            ("w.partial.state", "reserved"),
        ] {
            let m = Manifest {
                files: vec![entry("ok.bin"), entry(path)],
            };
            let err = m.validate("test").unwrap_err().to_string();
            assert!(err.contains("entry 1"), "{err}");
            assert!(err.contains(&format!("{path:?}")), "{err}");
            assert!(err.contains(needle), "{path}: {err}");
        }
    }

    #[test]
    fn rejects_duplicates_bad_digests_and_file_dir_clashes() {
        let m = Manifest {
            files: vec![entry("a"), entry("a")],
        };
        assert!(m.validate("t").unwrap_err().to_string().contains("twice"));
        let m = Manifest {
            files: vec![entry("a"), entry("a/b")],
        };
        assert!(m
            .validate("t")
            .unwrap_err()
            .to_string()
            .contains("directory"));
        let mut e = entry("a");
        e.sha256 = "xyz".into();
        let m = Manifest { files: vec![e] };
        assert!(m.validate("t").unwrap_err().to_string().contains("64 hex"));
    }

    #[test]
    fn parses_and_lowercases() {
        let json = format!(
            r#"{{"files":[{{"path":"d/model-00001-of-00004.safetensors","size":4976698672,"sha256":"{}"}}]}}"#,
            "AB".repeat(32)
        );
        let m = Manifest::from_slice(json.as_bytes(), "t").unwrap();
        assert_eq!(m.files[0].sha256, "ab".repeat(32));
        assert_eq!(m.total_size(), 4976698672);
        let err = Manifest::from_slice(
            br#"{"files":[{"path":"a","size":1}]}"#,
            "http://x/manifest.json",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("http://x/manifest.json"), "{err}");
        let err = Manifest::from_slice(br#"{"files":[],"extra":1}"#, "t").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn hex_of_empty_sha256() {
        assert_eq!(
            hex(&Sha256::digest(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
