//! The warmup job: what to fetch, from where, to where, and how hard.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::source::Source;
use super::tuning::Tuning;
use crate::client::Client;
use crate::error::WarmupError;

/// One model version to warm: `{"model":…,"version":…,"source":{"http":"…"}|{"local":"…"},
/// "dest":"…","ca_file":"…","tuning":{…}}`. `ca_file`, `tuning` and each of its fields may be
/// left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmupJob {
    /// Model name (a label for progress, logs and metrics).
    pub model: String,
    /// Model version (a label, like `model`).
    pub version: String,
    /// Where the files and `manifest.json` are.
    pub source: Source,
    /// The local cache directory the files are written to (created if missing). Use one
    /// directory per model version.
    pub dest: PathBuf,
    /// PEM bundle of the certificate authorities that verify an `https://` source (default:
    /// the system's roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Parallelism, chunking, bandwidth, retries, page cache.
    #[serde(default)]
    pub tuning: Tuning,
}

impl WarmupJob {
    /// Checks what can be checked before the job runs: the tuning, an HTTP source's URL, and
    /// `ca_file` (read and parsed). [`crate::run()`] does the same first.
    pub fn validate(&self) -> Result<(), WarmupError> {
        self.tuning.validate()?;
        if let Source::Http(url) = &self.source {
            Client::new(url, self.ca_file.as_deref())?;
        }
        Ok(())
    }
}
