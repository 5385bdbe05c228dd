//! The HTTP source: a model version's files under a base URL, fetched with `Range` where the
//! server honours it.

use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

use hyper::{StatusCode, Uri};

use super::response::{next_frame, status_fail};
use crate::client::Client;
use crate::ctx::JobCtx;
use crate::error::WarmupError;
use crate::names::MANIFEST_FILE;
use crate::outcome::Fail;

/// Whether the server honours `Range`: not known yet, yes, no.
pub(crate) const RANGES_UNKNOWN: u8 = 0;
pub(crate) const RANGES_YES: u8 = 1;
pub(crate) const RANGES_NO: u8 = 2;

/// A manifest larger than this is refused.
const MANIFEST_LIMIT: usize = 64 << 20;

pub(crate) struct HttpSource {
    pub(super) client: Client,
    /// One of `RANGES_*`.
    pub(super) ranges: AtomicU8,
}

impl HttpSource {
    pub(crate) fn new(base: &str, ca_file: Option<&Path>) -> Result<Self, WarmupError> {
        Ok(HttpSource {
            client: Client::new(base, ca_file)?,
            ranges: AtomicU8::new(RANGES_UNKNOWN),
        })
    }

    pub(crate) fn ranges(&self) -> u8 {
        self.ranges.load(Ordering::Relaxed)
    }

    /// `<base>/<path>`, each byte outside `A-Z a-z 0-9 - . _ ~ /` percent-encoded.
    pub(crate) fn url(&self, path: &str) -> String {
        self.client.url(path)
    }

    /// `GET <base>/manifest.json`, retrying transient errors.
    pub(crate) async fn fetch_manifest(
        &self,
        ctx: &JobCtx,
    ) -> Result<(String, Vec<u8>), WarmupError> {
        let (url, uri) = match self.client.uri(MANIFEST_FILE) {
            Ok(u) => u,
            Err(Fail::Fatal(e)) => return Err(e),
            Err(_) => return Err(WarmupError::InvalidJob(self.client.base().to_string())),
        };
        let mut attempt = 0;
        loop {
            let res = self.manifest_once(ctx, &uri, &url).await;
            match res {
                Ok(bytes) => return Ok((url, bytes)),
                Err(Fail::Fatal(e)) => return Err(e),
                Err(Fail::Stopped) => return Err(WarmupError::Cancelled),
                Err(Fail::Transient { reason, connect }) => {
                    attempt += 1;
                    if attempt > ctx.tuning.retries {
                        return Err(ctx.exhausted(MANIFEST_FILE, url, reason, connect));
                    }
                    tracing::warn!(url = %url, attempt, error = %reason, "warmup: manifest fetch failed, retrying");
                    if !ctx.backoff(attempt).await {
                        return Err(WarmupError::Cancelled);
                    }
                }
            }
        }
    }

    async fn manifest_once(&self, ctx: &JobCtx, uri: &Uri, url: &str) -> Result<Vec<u8>, Fail> {
        let resp = self.client.get(uri, None).await?;
        if resp.status() != StatusCode::OK {
            return Err(status_fail(resp.status(), MANIFEST_FILE, url));
        }
        let mut body = resp.into_body();
        let mut out = Vec::new();
        while let Some(data) = next_frame(ctx, &mut body).await? {
            if out.len() + data.len() > MANIFEST_LIMIT {
                return Err(Fail::Fatal(WarmupError::InvalidManifest {
                    location: url.to_string(),
                    reason: format!("larger than {MANIFEST_LIMIT} bytes"),
                }));
            }
            out.extend_from_slice(&data);
        }
        Ok(out)
    }
}
