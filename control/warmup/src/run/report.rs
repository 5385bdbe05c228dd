//! What a finished warmup did.

use serde::{Deserialize, Serialize};

/// What a finished warmup did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The job's model.
    pub model: String,
    /// The job's version.
    pub version: String,
    /// Files in the manifest.
    pub files_total: u64,
    /// Files fetched (wholly or partly) by this run.
    pub files_fetched: u64,
    /// Files already in place and verified, not fetched.
    pub files_skipped: u64,
    /// Sum of the manifest's sizes.
    pub bytes_total: u64,
    /// Bytes moved from the source by this run.
    pub bytes_transferred: u64,
    /// Bytes of chunks finished by an earlier, interrupted run and not fetched again.
    pub bytes_resumed: u64,
    /// Bytes of the files already in place.
    pub bytes_skipped: u64,
    /// Bytes read back into the page cache (`tuning.preread`), else 0.
    pub preread_bytes: u64,
    /// Bytes of the files in the page cache right after the pre-read (`tuning.preread` on a
    /// file system that supports `RWF_NOWAIT` reads), else `None`.
    pub resident_bytes: Option<u64>,
    /// Retries of transient errors and re-fetches after a sha256 mismatch.
    pub retries: u64,
    /// Wall-clock seconds of the run.
    pub elapsed_secs: f64,
}
