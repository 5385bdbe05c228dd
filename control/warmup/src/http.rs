//! The HTTP source: `GET <base>/<path>` with `Range`, over hyper's pooled HTTP/1.1 client,
//! plain or TLS (rustls; the system's roots or the job's CA bundle).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, ACCEPT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, RANGE, USER_AGENT};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::oneshot;

use crate::fetch::{Done, Fail, FileCtx, JobCtx, Writer};
use crate::manifest::MANIFEST_FILE;
use crate::WarmupError;

/// Whether the server honours `Range`: not known yet, yes, no.
pub(crate) const RANGES_UNKNOWN: u8 = 0;
pub(crate) const RANGES_YES: u8 = 1;
pub(crate) const RANGES_NO: u8 = 2;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a response's head.
const HEADERS_TIMEOUT: Duration = Duration::from_secs(60);
/// A body that sends nothing for this long is treated as a dead connection.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Cap on hyper's read buffer per connection (its default, ~400 KiB, takes 32 connections
/// past 40 MiB of memory for no measurable speed).
const READ_BUF_MAX: usize = 128 << 10;
/// A manifest larger than this is refused.
const MANIFEST_LIMIT: usize = 64 << 20;
const UA: &str = concat!("infergate-warmup/", env!("CARGO_PKG_VERSION"));

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

pub(crate) struct HttpSource {
    client: Client<Connector, Empty<Bytes>>,
    base: String,
    ranges: AtomicU8,
}

impl HttpSource {
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
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .http1_max_buf_size(READ_BUF_MAX)
            .build(connector);
        Ok(HttpSource {
            client,
            base,
            ranges: AtomicU8::new(RANGES_UNKNOWN),
        })
    }

    pub(crate) fn ranges(&self) -> u8 {
        self.ranges.load(Ordering::Relaxed)
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

    fn uri(&self, path: &str) -> Result<(String, Uri), Fail> {
        let url = self.url(path);
        match url.parse::<Uri>() {
            Ok(uri) => Ok((url, uri)),
            Err(e) => Err(Fail::Fatal(WarmupError::InvalidJob(format!("{url}: {e}")))),
        }
    }

    async fn get(&self, uri: &Uri, range: Option<(u64, u64)>) -> Result<Response<Incoming>, Fail> {
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

    /// `GET <base>/manifest.json`, retrying transient errors.
    pub(crate) async fn fetch_manifest(
        &self,
        ctx: &JobCtx,
    ) -> Result<(String, Vec<u8>), WarmupError> {
        let (url, uri) = match self.uri(MANIFEST_FILE) {
            Ok(u) => u,
            Err(Fail::Fatal(e)) => return Err(e),
            Err(_) => return Err(WarmupError::InvalidJob(self.base.clone())),
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
                        return Err(ctx.exhausted(MANIFEST_FILE, reason, connect));
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
        let resp = self.get(uri, None).await?;
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

    /// Bytes `[*pos, end)` of chunk `chunk` with one range request; `*pos` advances with every
    /// byte written, so a retry continues where this attempt stopped. A `200` answer (the
    /// server ignores `Range`) turns this worker into the file's only one, streaming the whole
    /// file.
    pub(crate) async fn fetch_range(
        &self,
        ctx: &JobCtx,
        f: &FileCtx,
        chunk: u64,
        pos: &mut u64,
        end: u64,
        probe: &mut Option<oneshot::Sender<bool>>,
    ) -> Result<Done, Fail> {
        let path = f.entry.path.as_str();
        let size = f.entry.size;
        let (url, uri) = self.uri(path)?;
        let resp = self.get(&uri, Some((*pos, end - 1))).await?;
        match resp.status() {
            StatusCode::PARTIAL_CONTENT => {
                check_content_range(resp.headers(), *pos, end, size)
                    .map_err(|reason| fetch_fail(path, &url, reason))?;
                self.ranges.store(RANGES_YES, Ordering::Relaxed);
                if let Some(tx) = probe.take() {
                    let _ = tx.send(true);
                }
                let mut body = resp.into_body();
                let mut w = Writer::new(ctx, f, *pos);
                let res = async {
                    while let Some(data) = next_frame(ctx, &mut body).await? {
                        if w.next_offset() + data.len() as u64 > end {
                            return Err(fetch_fail(
                                path,
                                &url,
                                "the server sent more bytes than the range asked for".into(),
                            ));
                        }
                        ctx.throttle(data.len()).await;
                        w.push(data).await?;
                    }
                    Ok(())
                }
                .await;
                match res {
                    Ok(()) => {
                        w.flush().await?;
                        *pos = w.next_offset();
                        if *pos < end {
                            return Err(Fail::transient(format!(
                                "short read: the body ended {} bytes early",
                                end - *pos
                            )));
                        }
                        Ok(Done::Chunk)
                    }
                    Err(Fail::Transient { reason, connect }) => {
                        // Keep what arrived intact; the retry asks for the rest.
                        w.flush().await?;
                        *pos = w.next_offset();
                        Err(Fail::Transient { reason, connect })
                    }
                    Err(e) => Err(e),
                }
            }
            StatusCode::OK => {
                if !(*pos == 0 && end == size) {
                    self.ranges.store(RANGES_NO, Ordering::Relaxed);
                    tracing::info!(url = %url, "warmup: the server ignores Range; streaming whole files");
                }
                let mut owned: BTreeMap<u64, u64> =
                    f.drain().into_iter().map(|c| (c, f.bounds(c).0)).collect();
                owned.insert(chunk, *pos);
                if let Some(tx) = probe.take() {
                    let _ = tx.send(false);
                }
                self.fetch_whole(ctx, f, owned, Some(resp)).await?;
                Ok(Done::Whole)
            }
            status => Err(status_fail(status, path, &url)),
        }
    }

    /// Streams the whole file (plain `GET`, retried), writing only the chunks in `owned`
    /// (chunk → next offset to write) and marking each finished as it completes.
    pub(crate) async fn fetch_whole(
        &self,
        ctx: &JobCtx,
        f: &FileCtx,
        mut owned: BTreeMap<u64, u64>,
        mut first: Option<Response<Incoming>>,
    ) -> Result<(), Fail> {
        let path = f.entry.path.as_str();
        let (url, uri) = self.uri(path)?;
        let mut attempt = 0;
        loop {
            if owned.is_empty() {
                return Ok(());
            }
            let resp = match first.take() {
                Some(resp) => Ok(resp),
                None => self.get(&uri, None).await,
            };
            let res = match resp {
                Ok(resp) if resp.status() == StatusCode::OK => {
                    self.stream_whole(ctx, f, &url, &mut owned, resp).await
                }
                Ok(resp) => Err(status_fail(resp.status(), path, &url)),
                Err(e) => Err(e),
            };
            match res {
                Ok(()) => return Ok(()),
                Err(Fail::Transient { reason, connect }) => {
                    attempt += 1;
                    if attempt > ctx.tuning.retries {
                        return Err(Fail::Fatal(ctx.exhausted(path, reason, connect)));
                    }
                    tracing::warn!(url = %url, attempt, error = %reason, "warmup: transient error, retrying");
                    if !ctx.backoff(attempt).await {
                        return Err(Fail::Stopped);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn stream_whole(
        &self,
        ctx: &JobCtx,
        f: &FileCtx,
        url: &str,
        owned: &mut BTreeMap<u64, u64>,
        resp: Response<Incoming>,
    ) -> Result<(), Fail> {
        let path = f.entry.path.as_str();
        let size = f.entry.size;
        if let Some(len) = content_length(resp.headers()) {
            if len != size {
                return Err(fetch_fail(
                    path,
                    url,
                    format!("the source file is {len} bytes, the manifest says {size}"),
                ));
            }
        }
        let mut body = resp.into_body();
        let mut w = Writer::new(ctx, f, 0);
        let mut offset = 0u64;
        let res: Result<(), Fail> = async {
            while let Some(data) = next_frame(ctx, &mut body).await? {
                if offset + data.len() as u64 > size {
                    return Err(fetch_fail(
                        path,
                        url,
                        format!("the source file is larger than the manifest's {size} bytes"),
                    ));
                }
                ctx.throttle(data.len()).await;
                let mut consumed = 0usize;
                while consumed < data.len() {
                    let chunk = offset / f.chunk_size;
                    let (_, chunk_end) = f.bounds(chunk);
                    let take = (data.len() - consumed)
                        .min(usize::try_from(chunk_end - offset).unwrap_or(usize::MAX));
                    let piece_end = offset + take as u64;
                    if let Some(&next) = owned.get(&chunk) {
                        if piece_end > next {
                            let skip = usize::try_from(next.saturating_sub(offset)).unwrap_or(0);
                            w.seek(offset + skip as u64).await?;
                            w.push(data.slice(consumed + skip..consumed + take)).await?;
                            owned.insert(chunk, piece_end);
                        }
                        if piece_end == chunk_end {
                            w.flush().await?;
                            owned.remove(&chunk);
                            f.chunk_finished(chunk).await?;
                        }
                    }
                    offset = piece_end;
                    consumed += take;
                }
            }
            Ok(())
        }
        .await;
        match res {
            Ok(()) => {
                w.flush().await?;
                if offset < size {
                    return Err(Fail::transient(format!(
                        "short read: the body ended after {offset} of {size} bytes"
                    )));
                }
                Ok(())
            }
            Err(Fail::Transient { reason, connect }) => {
                w.flush().await?;
                Err(Fail::Transient { reason, connect })
            }
            Err(e) => Err(e),
        }
    }
}

/// The next non-empty data frame; `None` at the end of the body.
async fn next_frame(ctx: &JobCtx, body: &mut Incoming) -> Result<Option<Bytes>, Fail> {
    loop {
        let frame = tokio::select! {
            biased;
            _ = ctx.abort.cancelled() => return Err(Fail::Stopped),
            frame = tokio::time::timeout(IDLE_TIMEOUT, body.frame()) => frame,
        };
        match frame {
            Err(_) => {
                return Err(Fail::transient(format!(
                    "stalled: no data for {} s",
                    IDLE_TIMEOUT.as_secs()
                )))
            }
            Ok(None) => return Ok(None),
            Ok(Some(Err(e))) => {
                return Err(Fail::transient(format!(
                    "connection error in the body: {}",
                    chain(&e)
                )))
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if !data.is_empty() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
}

fn fetch_fail(path: &str, url: &str, reason: String) -> Fail {
    Fail::Fatal(WarmupError::Fetch {
        path: path.to_string(),
        location: url.to_string(),
        reason,
    })
}

fn status_fail(status: StatusCode, path: &str, url: &str) -> Fail {
    match status.as_u16() {
        404 | 410 => Fail::Fatal(WarmupError::NotFound {
            path: path.to_string(),
            location: url.to_string(),
        }),
        408 | 429 | 500..=599 => Fail::transient(format!("HTTP {status}")),
        416 => fetch_fail(
            path,
            url,
            format!("HTTP {status}: the file at the source is smaller than the manifest says"),
        ),
        _ => fetch_fail(path, url, format!("HTTP {status}")),
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Checks `Content-Range: bytes <start>-<end-1>/<size>` of a 206 answer.
fn check_content_range(headers: &HeaderMap, start: u64, end: u64, size: u64) -> Result<(), String> {
    let Some(value) = headers.get(CONTENT_RANGE) else {
        return match content_length(headers) {
            Some(len) if len == end - start => Ok(()),
            _ => Err("206 answer without Content-Range".into()),
        };
    };
    let value = value
        .to_str()
        .map_err(|_| "unreadable Content-Range".to_string())?;
    let parsed = (|| {
        let rest = value.trim().strip_prefix("bytes ")?;
        let (range, total) = rest.split_once('/')?;
        let (first, last) = range.split_once('-')?;
        let first: u64 = first.trim().parse().ok()?;
        let last: u64 = last.trim().parse().ok()?;
        let total: Option<u64> = if total.trim() == "*" {
            None
        } else {
            Some(total.trim().parse().ok()?)
        };
        Some((first, last, total))
    })();
    let Some((first, last, total)) = parsed else {
        return Err(format!("unreadable Content-Range {value:?}"));
    };
    if let Some(total) = total {
        if total != size {
            return Err(format!(
                "the source file is {total} bytes, the manifest says {size}"
            ));
        }
    }
    if first != start || last + 1 != end {
        return Err(format!(
            "asked for bytes {start}-{}, the server answered {value:?}",
            end - 1
        ));
    }
    Ok(())
}

/// rustls' client settings for `https://` sources: TLS 1.2 and 1.3, ALPN http/1.1, verified
/// against `ca_file` (PEM) when given, else against the system's roots (read once per process).
/// An `http://` source never uses them: it gets no roots, and nothing is read.
fn tls_config(
    https: bool,
    ca_file: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, WarmupError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let roots = match ca_file {
        None if !https => Arc::new(rustls::RootCertStore::empty()),
        None => system_roots(),
        Some(path) => {
            let bad = |reason: String| {
                WarmupError::InvalidJob(format!("ca_file {}: {reason}", path.display()))
            };
            let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            let mut store = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| bad(e.to_string()))?;
                store.add(cert).map_err(|e| bad(e.to_string()))?;
            }
            if store.is_empty() {
                return Err(bad("no certificate in the file".into()));
            }
            Arc::new(store)
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WarmupError::InvalidJob(format!("TLS settings: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn system_roots() -> Arc<rustls::RootCertStore> {
    static ROOTS: OnceLock<Arc<rustls::RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = rustls::RootCertStore::empty();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                tracing::warn!("no system root certificates: https sources need a ca_file");
            }
            Arc::new(store)
        })
        .clone()
}

/// Whether a client error comes from a server certificate that does not verify.
fn certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        find_tls_error(e),
        Some(rustls::Error::InvalidCertificate(_))
    )
}

/// rustls' error behind `e`. tokio-rustls reports it inside an `io::Error` (which the
/// connector may wrap in another), and `io::Error::source` skips the error it wraps: so look
/// inside with `get_ref`.
fn find_tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        return find_tls_error(inner as &(dyn std::error::Error + 'static));
    }
    e.source().and_then(find_tls_error)
}

/// An error and its sources, `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_checks() {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_RANGE, "bytes 10-19/100".parse().unwrap());
        assert!(check_content_range(&h, 10, 20, 100).is_ok());
        assert!(check_content_range(&h, 10, 20, 101)
            .unwrap_err()
            .contains("manifest says 101"));
        assert!(check_content_range(&h, 0, 10, 100).is_err());
        h.insert(CONTENT_RANGE, "bytes 10-19/*".parse().unwrap());
        assert!(check_content_range(&h, 10, 20, 100).is_ok());
    }

    #[test]
    fn urls_are_encoded() {
        let s = HttpSource::new("http://h:1/models/x/", None).unwrap();
        assert_eq!(s.url("a b/c%.bin"), "http://h:1/models/x/a%20b/c%25.bin");
        let err = |url: &str| match HttpSource::new(url, None) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        assert_eq!(err("https://h/x"), "");
        assert!(err("http://h/x?y").contains("query"));
        assert!(err("ftp://h/x").contains("not an http"));
        let missing = HttpSource::new("https://h/x", Some(Path::new("/nonexistent/ca.pem")));
        assert!(missing
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("ca_file /nonexistent/ca.pem"));
    }
}
