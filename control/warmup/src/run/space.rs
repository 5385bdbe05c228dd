//! Free space in the destination, checked before any transfer.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::WarmupError;
use crate::io_errors::join_error;
use crate::manifest::ManifestEntry;
use crate::names::{with_suffix, PARTIAL_SUFFIX};

/// Fails before any transfer when the destination lacks room for what is left to write
/// (file sizes less the space a resumable `.partial` already holds).
pub(super) async fn check_space(
    dest: &Path,
    to_fetch: &[ManifestEntry],
) -> Result<(), WarmupError> {
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
