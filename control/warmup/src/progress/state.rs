//! The states a warmup goes through.

use serde::{Deserialize, Serialize};

/// Where a warmup is. Serialised as `{"state":"fetching"}` or
/// `{"state":"failed","reason":"…"}` (flattened into [`ProgressSnapshot`](super::ProgressSnapshot)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum WarmupState {
    /// Not started.
    Pending,
    /// Transferring chunks.
    Fetching,
    /// Checking files already in the destination, or finishing (hash, fsync, rename, pre-read)
    /// once every byte is in.
    Verifying,
    /// Every file is in place and verified: a model server can start.
    Warm,
    /// Stopped; `reason` is the error's message (`"warmup cancelled; …"` when cancelled).
    Failed {
        /// The error's message.
        reason: String,
    },
}
