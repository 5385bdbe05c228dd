//! How hard a job fetches: parallelism, chunking, bandwidth, retries, page cache.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::WarmupError;

/// How hard to fetch. Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tuning {
    /// Files fetched at the same time (default: 4).
    pub parallel_files: usize,
    /// Range requests (or positioned reads) in flight per file, at most (default: 8).
    pub parallel_ranges: usize,
    /// Connections (or positioned reads) in flight for the whole job (default: two per CPU
    /// this process may use, as its affinity mask and cgroup CPU quota allow, at least 4 and
    /// at most 16). A file gets `max_connections` divided by the files in flight when it
    /// starts (at most `parallel_files`, fewer near the end of the job), at most
    /// `parallel_ranges` and at least one: with 16, 4 ranges each while 4 files are fetched, 8
    /// for the last file. Fewer than `parallel_files` files are fetched at once if
    /// `max_connections` is smaller.
    pub max_connections: usize,
    /// Bytes per range request and per resume unit (default: 16 MiB); 4 KiB to 1 GiB.
    pub chunk_size: u64,
    /// Bytes per second for the whole job, shared by all ranges (default: none, unlimited).
    pub bandwidth_cap: Option<u64>,
    /// Retries of a transient error (connect error, 5xx, 408/429, reset, short read, stall)
    /// per range, and re-fetches of a file whose sha256 does not match (default: 5).
    pub retries: u32,
    /// First retry delay in milliseconds, doubled for each further retry (with ±50 % jitter,
    /// at most 30 s) (default: 200).
    pub retry_backoff_ms: u64,
    /// Read every file once after verification so that a model server that mmaps them starts
    /// from the page cache (default: false).
    pub preread: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            parallel_files: 4,
            parallel_ranges: 8,
            max_connections: default_max_connections(),
            chunk_size: 16 << 20,
            bandwidth_cap: None,
            retries: 5,
            retry_backoff_ms: 200,
            preread: false,
        }
    }
}

/// The default connection budget: two per CPU this process may use (its affinity mask and
/// cgroup CPU quota count, as [`std::thread::available_parallelism`] reads them), at least 4
/// and at most 16. Every connection costs CPU: the receive copy, the write, SHA-256, and for
/// each range after a file's first, reading its bytes back to hash them in order. With few
/// CPUs the transfer is CPU-bound and connections past two per CPU slow it down; with many,
/// 16 keeps enough ranges open for stores that limit each connection.
///
/// The CPU count is read once per process: `#[serde(default)]` builds a default [`Tuning`]
/// for every job deserialised, and reading the affinity mask and cgroup files each time is
/// wasted work.
fn default_max_connections() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    let cpus = *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from));
    connections_for_cpus(cpus)
}

pub(super) fn connections_for_cpus(cpus: usize) -> usize {
    cpus.saturating_mul(2).clamp(4, 16)
}

impl Tuning {
    /// Files fetched at the same time: `parallel_files`, but no more than `max_connections`
    /// (each file needs one).
    pub(crate) fn files_in_flight(&self) -> usize {
        self.parallel_files.min(self.max_connections).max(1)
    }

    /// Checks the ranges of the knobs.
    pub fn validate(&self) -> Result<(), WarmupError> {
        let bad = |msg: String| Err(WarmupError::InvalidJob(msg));
        if !(1..=256).contains(&self.parallel_files) {
            return bad(format!(
                "parallel_files must be 1 to 256, got {}",
                self.parallel_files
            ));
        }
        if !(1..=256).contains(&self.parallel_ranges) {
            return bad(format!(
                "parallel_ranges must be 1 to 256, got {}",
                self.parallel_ranges
            ));
        }
        if !(1..=1024).contains(&self.max_connections) {
            return bad(format!(
                "max_connections must be 1 to 1024, got {}",
                self.max_connections
            ));
        }
        if !(4096..=(1 << 30)).contains(&self.chunk_size) {
            return bad(format!(
                "chunk_size must be 4 KiB to 1 GiB, got {}",
                self.chunk_size
            ));
        }
        if self.bandwidth_cap == Some(0) {
            return bad("bandwidth_cap must be positive (leave it out for no cap)".into());
        }
        Ok(())
    }
}
