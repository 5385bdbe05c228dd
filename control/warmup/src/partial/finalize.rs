//! Putting a verified `.partial` into place.

use std::fs::{self, File};
use std::path::Path;

use crate::error::WarmupError;
use crate::files::remove_if_exists;
use crate::io_errors::write_error;

/// `fsync` the verified `.partial`, rename it into place, drop the sidecar, `fsync` the
/// directory.
pub(crate) fn finalize(
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
