//! The warmup job: what to fetch, from where, to where, and how hard.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::WarmupError;

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
    /// `ca_file` (read and parsed). [`crate::run`] does the same first.
    pub fn validate(&self) -> Result<(), WarmupError> {
        self.tuning.validate()?;
        if let Source::Http(url) = &self.source {
            crate::http::HttpSource::new(url, self.ca_file.as_deref())?;
        }
        Ok(())
    }
}

/// Where a model version's files are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Source {
    /// An `http://` or `https://` base URL: files are fetched from `<base>/<path>`, the
    /// manifest from `<base>/manifest.json`. The server should support `Range` (nginx, S3-compatible
    /// gateways and most static servers do); one that does not is streamed whole.
    Http(String),
    /// A local or NFS directory holding the files and `manifest.json`.
    Local(PathBuf),
}

impl FromStr for Source {
    type Err = WarmupError;

    /// `http://…` and `https://…` are URLs, anything else a directory: what the CLI's
    /// `--source URL|DIR` takes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(WarmupError::InvalidJob("empty source".into()));
        }
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            Ok(Source::Http(s.to_string()))
        } else {
            Ok(Source::Local(PathBuf::from(s)))
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Http(url) => f.write_str(url),
            Source::Local(dir) => write!(f, "{}", dir.display()),
        }
    }
}

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

fn connections_for_cpus(cpus: usize) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_json_with_defaults() {
        let job: WarmupJob = serde_json::from_str(
            r#"{"model":"llama","version":"v3","source":{"http":"http://cache:8080/llama/v3"},"dest":"/var/cache/models/llama/v3"}"#,
        )
        .unwrap();
        assert_eq!(job.tuning, Tuning::default());
        assert_eq!(
            job.source,
            Source::Http("http://cache:8080/llama/v3".into())
        );
        assert_eq!(job.ca_file, None);
        let job: WarmupJob = serde_json::from_str(
            r#"{"model":"m","version":"1","source":{"http":"https://store/m/1"},"dest":"/d","ca_file":"/etc/ca.pem"}"#,
        )
        .unwrap();
        assert_eq!(job.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        let job: WarmupJob = serde_json::from_str(
            r#"{"model":"m","version":"1","source":{"local":"/mnt/nfs/m/1"},"dest":"/d","tuning":{"preread":true,"bandwidth_cap":1000}}"#,
        )
        .unwrap();
        assert!(job.tuning.preread);
        assert_eq!(job.tuning.parallel_ranges, 8);
        assert_eq!(job.tuning.bandwidth_cap, Some(1000));
        assert!(serde_json::from_str::<WarmupJob>(
            r#"{"model":"m","version":"1","source":{"local":"/x"},"dest":"/d","tuning":{"paralel_files":2}}"#
        )
        .unwrap_err()
        .to_string()
        .contains("unknown field"));
    }

    #[test]
    fn source_from_str() {
        assert_eq!(
            "http://h/x".parse::<Source>().unwrap(),
            Source::Http("http://h/x".into())
        );
        assert_eq!(
            "/mnt/m".parse::<Source>().unwrap(),
            Source::Local("/mnt/m".into())
        );
        assert!("".parse::<Source>().is_err());
    }

    #[test]
    fn default_connections_follow_the_cpus() {
        for (cpus, connections) in [(1, 4), (2, 4), (3, 6), (4, 8), (8, 16), (96, 16)] {
            assert_eq!(connections_for_cpus(cpus), connections, "{cpus} CPUs");
        }
        assert_eq!(connections_for_cpus(usize::MAX), 16);
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert_eq!(
            Tuning::default().max_connections,
            connections_for_cpus(cpus)
        );
    }

    #[test]
    fn tuning_ranges() {
        assert!(Tuning::default().validate().is_ok());
        let job = |source: &str, ca_file: Option<&str>| WarmupJob {
            model: "m".into(),
            version: "1".into(),
            source: source.parse().unwrap(),
            dest: "/d".into(),
            ca_file: ca_file.map(PathBuf::from),
            tuning: Tuning::default(),
        };
        assert!(job("http://store:8080/m", None).validate().is_ok());
        assert!(job("https://store/m", None).validate().is_ok());
        assert!(job("/mnt/m", None).validate().is_ok());
        let err = |j: WarmupJob| j.validate().unwrap_err().to_string();
        assert!(err(job("http://store/m?x", None)).contains("query"));
        assert!(err(job("https://store/m", Some("/nonexistent/ca.pem"))).contains("ca_file"));
        let t = Tuning {
            parallel_files: 0,
            ..Tuning::default()
        };
        assert!(t
            .validate()
            .unwrap_err()
            .to_string()
            .contains("parallel_files"));
        let t = Tuning {
            chunk_size: 10,
            ..Tuning::default()
        };
        assert!(t.validate().is_err());
    }
}
