//! Small file operations: replacing a file atomically, removing leftovers.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

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

/// Removes `path`; a missing file is fine, any other error is logged.
pub(crate) fn remove_if_exists(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "warmup: could not remove");
        }
    }
}
