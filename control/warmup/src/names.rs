//! The names the warmup itself uses in a source and a destination.

use std::path::{Path, PathBuf};

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

/// `path` with `suffix` appended to its last component (`a/b.bin` → `a/b.bin.partial`).
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}
