//! Checks of a manifest's entries: safe relative paths, digests, no duplicates or clashes.

use std::collections::HashSet;

use super::entry::Manifest;
use crate::error::WarmupError;
use crate::names::{LOCK_FILE, MANIFEST_FILE, PARTIAL_SUFFIX, STATE_SUFFIX, VERIFIED_RECORD};

impl Manifest {
    /// Checks every entry: a safe relative path (no absolute path, no `..`/`.`/empty
    /// component, no backslash or NUL, none of the names the warmup itself uses: `manifest.json`,
    /// `.infergate-verified.json`, `*.partial`, `*.partial.state`), a 64-hex-digit sha256, no
    /// duplicate, no path that is both a file and a directory, and sizes whose sum fits in a
    /// `u64`. The error names the entry.
    pub fn validate(&self, location: &str) -> Result<(), WarmupError> {
        let bad = |i: usize, path: &str, reason: String| WarmupError::InvalidManifest {
            location: location.to_string(),
            reason: format!("entry {i} ({path:?}): {reason}"),
        };
        let mut seen = HashSet::new();
        let mut total = 0u64;
        for (i, entry) in self.files.iter().enumerate() {
            total = total.checked_add(entry.size).ok_or_else(|| {
                bad(
                    i,
                    &entry.path,
                    format!(
                        "size {} brings the manifest's total past {} bytes",
                        entry.size,
                        u64::MAX
                    ),
                )
            })?;
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
