//! Opening a file's `.partial`, resuming it where its sidecar allows.

use std::fs::{self, File, OpenOptions};
use std::path::Path;

use super::state::PartialState;
use crate::error::WarmupError;
use crate::files::{remove_if_exists, write_atomic};
use crate::io_errors::write_error;
use crate::manifest::ManifestEntry;

/// Opens (or creates and preallocates) `<path>.partial`; returns it with the chunks an earlier
/// run finished, if its sidecar matches this manifest entry and chunk size.
pub(crate) fn open_partial(
    entry: &ManifestEntry,
    partial: &Path,
    state_path: &Path,
    chunk_size: u64,
) -> Result<(File, PartialState), WarmupError> {
    if let Some(parent) = partial.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| WarmupError::io(format!("creating {}", parent.display()), e))?;
    }
    let state = PartialState::load(entry, partial, state_path, chunk_size);
    let resumed = state.is_some();
    if !resumed {
        remove_if_exists(partial);
        remove_if_exists(state_path);
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(partial)
        .map_err(|e| write_error(&entry.path, partial, e))?;
    crate::disk::preallocate(&file, entry.size)
        .map_err(|e| write_error(&entry.path, partial, e))?;
    let state = match state {
        Some(state) => state,
        None => {
            let state = PartialState::new(entry, chunk_size);
            let json = state.to_json()?;
            write_atomic(state_path, &json).map_err(|e| write_error(&entry.path, partial, e))?;
            state
        }
    };
    Ok((file, state))
}
