//! The resume sidecar `<path>.partial.state`: which chunks of a `.partial` are written.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::WarmupError;
use crate::manifest::ManifestEntry;

/// The resume sidecar `<path>.partial.state`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PartialState {
    size: u64,
    sha256: String,
    chunk_size: u64,
    /// Chunks whose bytes are all written to the `.partial` file.
    pub finished: BTreeSet<u64>,
}

impl PartialState {
    /// The state of a `.partial` with no chunk written yet.
    pub(crate) fn new(entry: &ManifestEntry, chunk_size: u64) -> Self {
        PartialState {
            size: entry.size,
            sha256: entry.sha256.clone(),
            chunk_size,
            finished: BTreeSet::new(),
        }
    }

    /// The sidecar's content.
    pub(crate) fn to_json(&self) -> Result<Vec<u8>, WarmupError> {
        serde_json::to_vec(self)
            .map_err(|e| WarmupError::io("serialising state", io::Error::other(e)))
    }

    /// The sidecar at `state_path`, if it belongs to this manifest entry and chunk size and
    /// `partial` has the entry's size; `None` (logged) if not, or if there is none.
    pub(crate) fn load(
        entry: &ManifestEntry,
        partial: &Path,
        state_path: &Path,
        chunk_size: u64,
    ) -> Option<Self> {
        let bytes = fs::read(state_path).ok()?;
        let state: PartialState = match serde_json::from_slice(&bytes) {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!(path = %entry.path, error = %e, "warmup: unreadable resume state, starting over");
                return None;
            }
        };
        let nchunks = entry.size.div_ceil(chunk_size);
        let partial_len = fs::metadata(partial).ok()?.len();
        if state.size != entry.size
            || !state.sha256.eq_ignore_ascii_case(&entry.sha256)
            || state.chunk_size != chunk_size
            || state.finished.iter().any(|&c| c >= nchunks)
            || partial_len != entry.size
        {
            tracing::warn!(path = %entry.path, "warmup: resume state does not match the manifest entry, starting over");
            return None;
        }
        Some(state)
    }
}
