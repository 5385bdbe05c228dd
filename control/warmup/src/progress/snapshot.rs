//! A point-in-time copy of a warmup's progress.

use serde::{Deserialize, Serialize};

use super::state::WarmupState;

/// A point-in-time copy of [`Progress`](super::Progress), for the admin API, metrics and the health feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressSnapshot {
    /// The job's model.
    pub model: String,
    /// The job's version.
    pub version: String,
    /// `state` (and `reason` when failed).
    #[serde(flatten)]
    pub state: WarmupState,
    /// Bytes in place: files already present, resumed chunks, and bytes written by this run.
    pub bytes_done: u64,
    /// Sum of the manifest's sizes (0 until the manifest is read).
    pub bytes_total: u64,
    /// Bytes per second transferred over the last few (5) seconds.
    pub rate_bytes_per_sec: u64,
    /// Files in place and verified.
    pub files_done: u64,
    /// Files in the manifest.
    pub files_total: u64,
    /// Seconds since the job started (frozen when it ends).
    pub elapsed_secs: f64,
    /// Bytes of the model's files found in the page cache after the pre-read (`preread` jobs
    /// on file systems that can tell; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident_bytes: Option<u64>,
}

impl ProgressSnapshot {
    /// Whether the model is warm (the gateway may route to it).
    pub fn is_warm(&self) -> bool {
        self.state == WarmupState::Warm
    }
}
