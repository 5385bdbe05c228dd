//! Where the bytes come from: the job's HTTP or local source.

use std::path::Path;

use crate::ctx::JobCtx;
use crate::error::WarmupError;
use crate::http::HttpSource;
use crate::job::Source;
use crate::local::LocalSource;

/// Where the bytes come from.
pub(crate) enum SourceImpl {
    Http(Box<HttpSource>),
    Local(LocalSource),
}

impl SourceImpl {
    /// The source `source` names (an HTTP one verified against `ca_file` when given).
    pub(crate) fn new(source: &Source, ca_file: Option<&Path>) -> Result<Self, WarmupError> {
        Ok(match source {
            Source::Http(url) => SourceImpl::Http(Box::new(HttpSource::new(url, ca_file)?)),
            Source::Local(dir) => SourceImpl::Local(LocalSource::new(dir)),
        })
    }

    /// The URL or file path of manifest path `path` at the source.
    pub(crate) fn location(&self, path: &str) -> String {
        match self {
            SourceImpl::Http(h) => h.url(path),
            SourceImpl::Local(l) => l.path(path).display().to_string(),
        }
    }

    /// The manifest's location and bytes (HTTP: retrying transient errors).
    pub(crate) async fn manifest(&self, ctx: &JobCtx) -> Result<(String, Vec<u8>), WarmupError> {
        match self {
            SourceImpl::Http(h) => h.fetch_manifest(ctx).await,
            SourceImpl::Local(l) => l.read_manifest().await,
        }
    }
}
