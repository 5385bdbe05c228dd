//! The one error type of the crate.

use std::io;
use std::path::PathBuf;

/// Why a warmup (or writing a manifest) failed.
///
/// Every variant's message names what failed: the URL, the manifest entry or the model file.
/// [`WarmupError::code`] gives a short, stable label for metrics and the health feed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WarmupError {
    /// The job itself is not usable (zero parallelism, bad URL, …).
    #[error("invalid warmup job: {0}")]
    InvalidJob(String),
    /// The manifest could not be parsed or has a bad entry.
    #[error("invalid manifest {location}: {reason}")]
    InvalidManifest {
        /// Where the manifest came from (URL or file path).
        location: String,
        /// What is wrong, naming the entry.
        reason: String,
    },
    /// The source could not be reached (connection refused, DNS, connect timeout) after all retries.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The URL that was tried.
        url: String,
        /// The last error.
        reason: String,
    },
    /// A file in the manifest (or the manifest itself) does not exist at the source.
    #[error("{path}: not found at the source ({location})")]
    NotFound {
        /// The manifest path of the file (`manifest.json` for the manifest).
        path: String,
        /// The URL or source path that was asked for.
        location: String,
    },
    /// Fetching a file failed: a permanent HTTP status, a size that differs from the manifest,
    /// or transient errors past the retry budget.
    #[error("{path}: fetching from {location} failed: {reason}")]
    Fetch {
        /// The manifest path of the file.
        path: String,
        /// The URL or source path.
        location: String,
        /// What happened.
        reason: String,
    },
    /// The fetched data never matched the manifest's sha256, not even after the retries.
    /// No file is left under the final name (and the corrupt `.partial` is removed).
    #[error(
        "{path}: sha256 mismatch after {attempts} attempt(s): the manifest says {expected}, the fetched data hashes to {actual}; nothing was left under the final name"
    )]
    ChecksumMismatch {
        /// The manifest path of the file.
        path: String,
        /// The sha256 from the manifest.
        expected: String,
        /// The sha256 of the last attempt's data.
        actual: String,
        /// How many times the file was fetched.
        attempts: u32,
    },
    /// The destination's file system has too little free space for the job (checked before
    /// anything is fetched).
    #[error(
        "not enough disk space in {}: the job needs {needed} more bytes, {available} are available",
        dest.display()
    )]
    InsufficientSpace {
        /// The destination directory.
        dest: PathBuf,
        /// Bytes still to be written.
        needed: u64,
        /// Bytes available to this (unprivileged) process.
        available: u64,
    },
    /// The disk filled up (`ENOSPC`/`EDQUOT`) during the job. The `.partial` file and its
    /// `.partial.state` sidecar are kept: a later run resumes from the finished chunks.
    #[error(
        "{path}: no space left on device while writing {}; the partial file and its state are kept, and a later run resumes from them",
        partial.display()
    )]
    NoSpace {
        /// The manifest path of the file.
        path: String,
        /// The `.partial` file that was being written.
        partial: PathBuf,
    },
    /// Any other I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Another warmup holds the destination's lock (`<dest>/.infergate-warmup.lock`).
    #[error("another warmup is running on {}", dest.display())]
    Busy {
        /// The destination directory.
        dest: PathBuf,
    },
    /// The job was cancelled through its [`crate::CancelToken`]. Finished chunks are kept
    /// (`.partial` + `.partial.state`), and a later run resumes from them.
    #[error("warmup cancelled; finished chunks are kept and a later run resumes from them")]
    Cancelled,
}

impl WarmupError {
    /// A short, stable label for metrics and logs: `invalid_job`, `invalid_manifest`,
    /// `unreachable`, `not_found`, `fetch`, `checksum`, `insufficient_space`, `no_space`, `io`, `busy`,
    /// `cancelled`.
    pub fn code(&self) -> &'static str {
        match self {
            WarmupError::InvalidJob(_) => "invalid_job",
            WarmupError::InvalidManifest { .. } => "invalid_manifest",
            WarmupError::Unreachable { .. } => "unreachable",
            WarmupError::NotFound { .. } => "not_found",
            WarmupError::Fetch { .. } => "fetch",
            WarmupError::ChecksumMismatch { .. } => "checksum",
            WarmupError::InsufficientSpace { .. } => "insufficient_space",
            WarmupError::NoSpace { .. } => "no_space",
            WarmupError::Io { .. } => "io",
            WarmupError::Busy { .. } => "busy",
            WarmupError::Cancelled => "cancelled",
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        WarmupError::Io {
            context: context.into(),
            source,
        }
    }
}
