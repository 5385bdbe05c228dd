//! The HTTP client of an HTTP source: `GET <base>/<path>`, optionally with `Range`, over
//! hyper's pooled HTTP/1.1 client, plain or TLS (rustls; the system's roots or the job's CA
//! bundle).

mod chain;
mod tls;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::header::{ACCEPT_ENCODING, RANGE, USER_AGENT};
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub(crate) use chain::chain;
use tls::{certificate_error, tls_config};

use crate::error::WarmupError;
use crate::outcome::Fail;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a response's head.
const HEADERS_TIMEOUT: Duration = Duration::from_secs(60);
/// Cap on hyper's read buffer per connection (its default, ~400 KiB, takes 32 connections
/// past 40 MiB of memory for no measurable speed).
const READ_BUF_MAX: usize = 128 << 10;
const UA: &str = concat!("infergate-warmup/", env!("CARGO_PKG_VERSION"));

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A pooled client for the files under one base URL.
pub(crate) struct Client {
    client: hyper_util::client::legacy::Client<Connector, Empty<Bytes>>,
    base: String,
}

impl Client {
    /// Checks `base` (an `http://` or `https://` URL without query or fragment) and reads
    /// `ca_file`; the client connects only when asked for something.
    pub(crate) fn new(base: &str, ca_file: Option<&Path>) -> Result<Self, WarmupError> {
        let lower = base.to_ascii_lowercase();
        if !lower.starts_with("http://") && !lower.starts_with("https://") {
            return Err(WarmupError::InvalidJob(format!(
                "{base}: not an http:// or https:// URL"
            )));
        }
        if base.contains(['?', '#']) {
            return Err(WarmupError::InvalidJob(format!(
                "{base}: the base URL must not have a query or fragment"
            )));
        }
        let base = base.trim_end_matches('/').to_string();
        match base.parse::<Uri>() {
            Ok(uri) if uri.authority().is_some() => {}
            Ok(_) | Err(_) => {
                return Err(WarmupError::InvalidJob(format!("{base}: not a valid URL")));
            }
        }
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        http.enforce_http(false);
        let https = lower.starts_with("https://");
        let connector = hyper_rustls::HttpsConnector::from((http, tls_config(https, ca_file)?));
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .http1_max_buf_size(READ_BUF_MAX)
            .build(connector);
        Ok(Client { client, base })
    }

    /// The base URL, without a trailing `/`.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// `<base>/<path>`, each byte outside `A-Z a-z 0-9 - . _ ~ /` percent-encoded.
    pub(crate) fn url(&self, path: &str) -> String {
        let mut url = String::with_capacity(self.base.len() + 1 + path.len());
        url.push_str(&self.base);
        url.push('/');
        for b in path.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                url.push(char::from(b));
            } else {
                url.push_str(&format!("%{b:02X}"));
            }
        }
        url
    }

    /// [`Client::url`] of `path`, and its parsed form.
    pub(crate) fn uri(&self, path: &str) -> Result<(String, Uri), Fail> {
        let url = self.url(path);
        match url.parse::<Uri>() {
            Ok(uri) => Ok((url, uri)),
            Err(e) => Err(Fail::Fatal(WarmupError::InvalidJob(format!("{url}: {e}")))),
        }
    }

    /// `GET uri`, with `Range: bytes=first-last` when `range` is given: the response's head, or
    /// why there is none (a certificate that does not verify is fatal, the rest transient).
    pub(crate) async fn get(
        &self,
        uri: &Uri,
        range: Option<(u64, u64)>,
    ) -> Result<Response<Incoming>, Fail> {
        let mut req = Request::get(uri.clone())
            .header(USER_AGENT, UA)
            .header(ACCEPT_ENCODING, "identity");
        if let Some((first, last)) = range {
            req = req.header(RANGE, format!("bytes={first}-{last}"));
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| Fail::Fatal(WarmupError::InvalidJob(format!("{uri}: {e}"))))?;
        match tokio::time::timeout(HEADERS_TIMEOUT, self.client.request(req)).await {
            Err(_) => Err(Fail::transient(format!(
                "no response within {} s",
                HEADERS_TIMEOUT.as_secs()
            ))),
            // A certificate that does not verify will not verify on a retry either.
            Ok(Err(e)) if certificate_error(&e) => Err(Fail::Fatal(WarmupError::Unreachable {
                url: uri.to_string(),
                reason: chain(&e),
            })),
            Ok(Err(e)) => Err(Fail::Transient {
                reason: chain(&e),
                connect: e.is_connect(),
            }),
            Ok(Ok(resp)) => Ok(resp),
        }
    }
}

#[cfg(test)]
mod tests;
