//! Where a model version's files are: a base URL or a directory.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::WarmupError;

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
