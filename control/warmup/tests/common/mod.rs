//! Test support: a real HTTP server with Range support and fault injection, temp dirs, random
//! model files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::Frame;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use infergate_warmup::{
    CancelToken, Manifest, ManifestEntry, Progress, Report, Source, Tuning, WarmupError, WarmupJob,
};
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "infergate-warmup-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn random_bytes(len: usize, seed: u64) -> Bytes {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut buf = vec![0u8; len];
    rng.fill_bytes(&mut buf);
    Bytes::from(buf)
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A model-like file set: path → content.
pub fn model_files(sizes: &[(&str, usize)]) -> BTreeMap<String, Bytes> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, (path, size))| (path.to_string(), random_bytes(*size, i as u64 + 1)))
        .collect()
}

pub fn manifest_of(files: &BTreeMap<String, Bytes>) -> Manifest {
    Manifest {
        files: files
            .iter()
            .map(|(path, data)| ManifestEntry {
                path: path.clone(),
                size: data.len() as u64,
                sha256: sha256_hex(data),
            })
            .collect(),
    }
}

/// Fast test tuning: small chunks, short backoff.
pub fn tuning() -> Tuning {
    Tuning {
        parallel_files: 2,
        parallel_ranges: 4,
        chunk_size: 256 << 10,
        retries: 3,
        retry_backoff_ms: 5,
        ..Tuning::default()
    }
}

pub fn job(source: Source, dest: &Path, tuning: Tuning) -> WarmupJob {
    WarmupJob {
        model: "test-model".into(),
        version: "v1".into(),
        source,
        dest: dest.to_path_buf(),
        ca_file: None,
        tuning,
    }
}

/// Runs a job; its result and progress.
pub async fn run_job(
    source: Source,
    dest: &Path,
    tuning: Tuning,
) -> (Result<Report, WarmupError>, Arc<Progress>) {
    let progress = Arc::new(Progress::new());
    let result = infergate_warmup::run(
        job(source, dest, tuning),
        progress.clone(),
        CancelToken::new(),
    )
    .await;
    (result, progress)
}

/// Runs a job that must succeed; its report and progress.
pub async fn run_ok(source: Source, dest: &Path, tuning: Tuning) -> (Report, Arc<Progress>) {
    let (result, progress) = run_job(source, dest, tuning).await;
    (result.unwrap(), progress)
}

/// Runs a job that must fail; its error and progress.
pub async fn run_err(source: Source, dest: &Path, tuning: Tuning) -> (WarmupError, Arc<Progress>) {
    let (result, progress) = run_job(source, dest, tuning).await;
    (result.unwrap_err(), progress)
}

/// Waits until `cond` holds, checking it every 2 ms; fails the test, naming `what`, if it does
/// not hold within `within`.
pub async fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Checks that `dest` holds exactly `files` (plus the verified record) and no leftovers.
pub fn assert_dest_matches(dest: &Path, files: &BTreeMap<String, Bytes>) {
    for (path, data) in files {
        let got = std::fs::read(dest.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(got == data[..], "{path}: content differs");
    }
    let mut leftovers = Vec::new();
    walk(dest, &mut leftovers);
    leftovers.retain(|p| {
        let s = p.to_string_lossy();
        s.ends_with(".partial") || s.ends_with(".partial.state") || s.ends_with(".tmp")
    });
    assert!(leftovers.is_empty(), "leftovers: {leftovers:?}");
}

pub fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            walk(&entry.path(), out);
        } else {
            out.push(entry.path());
        }
    }
}

/// Faults the test server injects. Counters count down with each request they affect;
/// `u32::MAX` means always.
#[derive(Debug, Default)]
pub struct Faults {
    /// Paths answered with 404.
    pub not_found: HashSet<String>,
    /// Path → number of 500 answers.
    pub status_500: HashMap<String, u32>,
    /// Path → number of bodies cut off (connection reset) halfway.
    pub reset: HashMap<String, u32>,
    /// Path → number of bodies with one byte flipped.
    pub corrupt: HashMap<String, u32>,
    /// Ignore `Range` (always 200 with the whole file).
    pub no_ranges: bool,
    /// Pause between 64 KiB frames of file bodies.
    pub frame_delay: Option<Duration>,
    /// Served instead of the real manifest.
    pub manifest_override: Option<Bytes>,
}

/// (path, range) of a request.
pub type RequestLog = Vec<(String, Option<(u64, u64)>)>;

#[derive(Default)]
pub struct ServerState {
    pub files: Mutex<BTreeMap<String, Bytes>>,
    pub faults: Mutex<Faults>,
    /// (path, range) of every request, in order.
    pub requests: Mutex<RequestLog>,
    /// File bodies being sent now, and the most at any time.
    pub in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
}

impl ServerState {
    /// Requests for `path` (without the leading '/').
    pub fn requests_for(&self, path: &str) -> Vec<Option<(u64, u64)>> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, r)| *r)
            .collect()
    }

    /// How often the exact range `first..=last` of `path` was requested.
    pub fn range_count(&self, path: &str, first: u64, last: u64) -> usize {
        self.requests_for(path)
            .iter()
            .filter(|r| **r == Some((first, last)))
            .count()
    }

    /// Requests for anything but the manifest.
    pub fn file_requests(&self) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p != "manifest.json")
            .count()
    }

    pub fn clear_requests(&self) {
        self.requests.lock().unwrap().clear();
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<ServerState>,
    tls: bool,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A test CA and a server certificate it signed for 127.0.0.1: (CA PEM, server config).
pub fn test_tls() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &*ca)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
    .unwrap();
    (ca.pem(), Arc::new(config))
}

impl TestServer {
    /// Serves `files` and their manifest under `/`.
    pub async fn start(files: BTreeMap<String, Bytes>) -> TestServer {
        Self::start_with(files, None).await
    }

    /// The same over TLS (`https://`), with `tls` from [`test_tls`].
    pub async fn start_tls(
        files: BTreeMap<String, Bytes>,
        tls: Arc<rustls::ServerConfig>,
    ) -> TestServer {
        Self::start_with(files, Some(tls)).await
    }

    async fn start_with(
        files: BTreeMap<String, Bytes>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> TestServer {
        let state = Arc::new(ServerState::default());
        *state.files.lock().unwrap() = files;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let st = state.clone();
        let acceptor = tls.clone().map(tokio_rustls::TlsAcceptor::from);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(st.clone(), req));
                    let http = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(tls), service).await;
                            }
                        }
                    }
                });
            }
        });
        TestServer {
            addr,
            state,
            tls: tls.is_some(),
            task,
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn source(&self) -> Source {
        Source::Http(self.url())
    }

    pub fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.state.faults.lock().unwrap()
    }
}

/// A body fed from a channel (so a test can pace it or cut it off with an error); counted in
/// [`ServerState::in_flight`] until dropped, if it has a state.
struct ChanBody(
    mpsc::Receiver<Result<Frame<Bytes>, io::Error>>,
    Option<Arc<ServerState>>,
);

impl ChanBody {
    fn counted(rx: mpsc::Receiver<Result<Frame<Bytes>, io::Error>>, st: Arc<ServerState>) -> Self {
        let now = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        st.max_in_flight.fetch_max(now, Ordering::SeqCst);
        ChanBody(rx, Some(st))
    }
}

impl Drop for ChanBody {
    fn drop(&mut self) {
        if let Some(st) = &self.1 {
            st.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl http_body::Body for ChanBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.0.poll_recv(cx)
    }
}

fn take(map: &mut HashMap<String, u32>, path: &str) -> bool {
    match map.get_mut(path) {
        Some(n) if *n > 0 => {
            if *n != u32::MAX {
                *n -= 1;
            }
            true
        }
        _ => false,
    }
}

fn parse_range(v: &str) -> Option<(u64, u64)> {
    let (a, b) = v.strip_prefix("bytes=")?.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&path[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

async fn handle(
    st: Arc<ServerState>,
    req: Request<Incoming>,
) -> Result<Response<ChanBody>, Infallible> {
    let path = decode(req.uri().path().trim_start_matches('/'));
    let range = req
        .headers()
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_range);
    st.requests.lock().unwrap().push((path.clone(), range));

    let (content, status, corrupt, reset, delay) = {
        let mut faults = st.faults.lock().unwrap();
        let files = st.files.lock().unwrap();
        let content =
            if path == "manifest.json" {
                Some(faults.manifest_override.clone().unwrap_or_else(|| {
                    Bytes::from(serde_json::to_vec(&manifest_of(&files)).unwrap())
                }))
            } else if faults.not_found.contains(&path) {
                None
            } else {
                files.get(&path).cloned()
            };
        let Some(content) = content else {
            return Ok(empty(StatusCode::NOT_FOUND));
        };
        if take(&mut faults.status_500, &path) {
            return Ok(empty(StatusCode::INTERNAL_SERVER_ERROR));
        }
        let corrupt = take(&mut faults.corrupt, &path);
        let reset = take(&mut faults.reset, &path);
        let ranged = range.is_some() && !faults.no_ranges;
        let delay = if path == "manifest.json" {
            None
        } else {
            faults.frame_delay
        };
        if ranged {
            let (first, last) = range.unwrap();
            let size = content.len() as u64;
            if first >= size || last < first {
                return Ok(empty(StatusCode::RANGE_NOT_SATISFIABLE));
            }
            let last = last.min(size - 1);
            (
                (
                    content.slice(first as usize..=last as usize),
                    Some((first, last, size)),
                ),
                StatusCode::PARTIAL_CONTENT,
                corrupt,
                reset,
                delay,
            )
        } else {
            ((content, None), StatusCode::OK, corrupt, reset, delay)
        }
    };
    let (mut data, content_range) = content;
    if corrupt && !data.is_empty() {
        let mut v = data.to_vec();
        let i = v.len() / 2;
        v[i] ^= 0xff;
        data = Bytes::from(v);
    }
    let len = data.len();
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        let cut = if reset { len / 2 } else { len };
        let mut off = 0;
        while off < cut {
            let end = (off + (64 << 10)).min(cut);
            if tx
                .send(Ok(Frame::data(data.slice(off..end))))
                .await
                .is_err()
            {
                return;
            }
            off = end;
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
        }
        if reset {
            let _ = tx
                .send(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "injected reset",
                )))
                .await;
        }
    });
    let mut resp = Response::builder()
        .status(status)
        .header(CONTENT_LENGTH, len.to_string());
    if let Some((first, last, size)) = content_range {
        resp = resp.header(CONTENT_RANGE, format!("bytes {first}-{last}/{size}"));
    }
    let body = if path == "manifest.json" {
        ChanBody(rx, None)
    } else {
        ChanBody::counted(rx, st)
    };
    Ok(resp.body(body).unwrap())
}

fn empty(status: StatusCode) -> Response<ChanBody> {
    let (_tx, rx) = mpsc::channel(1);
    Response::builder()
        .status(status)
        .header(CONTENT_LENGTH, "0")
        .body(ChanBody(rx, None))
        .unwrap()
}
