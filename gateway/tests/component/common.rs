//! Harness of the component tests: a gateway built from YAML, simulators, an HTTP client that
//! stamps every frame with the (paused) tokio clock, a manually driven clock, polling helpers
//! with a real-time deadline, and a health feed server.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use infergate_gateway::{Running, Source};
use infergate_loadtest::sim::{SimConfig, Simulator};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Longest a condition is awaited, in real time, before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);
/// Real-time pause between two checks of a condition.
const POLL: Duration = Duration::from_millis(2);
/// How long, in real time, a test watches for something that must not happen while the clock
/// stands still: ample for loopback I/O and many turns of the scheduler. Nothing driven by a
/// timer can happen meanwhile, since the clock does not move.
pub const QUIET: Duration = Duration::from_millis(50);
/// Real time given to the tasks woken by one step of [`advance_until`] before the next step.
const SETTLE: Duration = Duration::from_millis(10);

pub const MS: Duration = Duration::from_millis(1);

// ---------------------------------------------------------------------------------------------
// Time

/// Keeps tokio's paused clock from advancing by itself while it is held.
///
/// A paused clock normally jumps to the next timer whenever every task is idle, also while a
/// task only waits for bytes on a socket; a loopback packet handled late on a busy machine
/// could then let a timeout fire early. Tokio does not auto-advance while a blocking task
/// runs, so this holds one blocking task open: time then moves only by `advance`, and real
/// I/O completes in real time. Tests run with `#[tokio::test(start_paused = true)]`.
pub struct ManualClock {
    _release: std::sync::mpsc::Sender<()>,
}

impl ManualClock {
    pub fn hold() -> ManualClock {
        let before = Instant::now();
        std::thread::sleep(MS);
        assert_eq!(
            Instant::now(),
            before,
            "the clock is not paused: use #[tokio::test(start_paused = true)]"
        );
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        // The task ends when the sender is dropped, with the clock.
        drop(tokio::task::spawn_blocking(move || {
            let _ = rx.recv();
        }));
        ManualClock { _release: tx }
    }
}

/// Moves the paused clock forward and lets the woken tasks run.
pub async fn advance(d: Duration) {
    tokio::time::advance(d).await;
}

/// Waits `d` of real time without blocking the runtime (the clock stays where it is).
pub async fn real_sleep(d: Duration) {
    tokio::task::spawn_blocking(move || std::thread::sleep(d))
        .await
        .unwrap();
}

/// Polls `check` until it returns `Ok`, for at most [`WAIT`] of real time; the failure
/// message has `what` and the last `Err`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) => assert!(
                std::time::Instant::now() < deadline,
                "{what}: not within {WAIT:?} (real time); last seen: {last}"
            ),
        }
        real_sleep(POLL).await;
    }
}

/// Checks for [`QUIET`] of real time, with the clock standing still, that `happened` stays
/// false.
pub async fn never<F, Fut>(what: &str, mut happened: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = std::time::Instant::now() + QUIET;
    loop {
        assert!(!happened().await, "{what}");
        if std::time::Instant::now() >= end {
            return;
        }
        real_sleep(POLL).await;
    }
}

/// Advances the clock by `step` until `check` holds and returns how far it moved; fails past
/// `limit`. After each step the woken tasks get [`SETTLE`] of real time; on a busy machine they
/// may lag a step or two, which only makes the returned time longer.
pub async fn advance_until<F, Fut>(
    what: &str,
    step: Duration,
    limit: Duration,
    mut check: F,
) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        let settle = std::time::Instant::now() + SETTLE;
        loop {
            if check().await {
                return start.elapsed();
            }
            if std::time::Instant::now() >= settle {
                break;
            }
            real_sleep(POLL).await;
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not within {limit:?} of clock time"
        );
        advance(step).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Gateway and simulators

/// Starts the gateway on `yaml` (listeners on port 0), with no file to reload.
pub async fn gateway(yaml: &str) -> Running {
    let source = Source {
        path: None,
        text: yaml,
        poll: Duration::from_secs(1),
    };
    infergate_gateway::start(source)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// A config with `top` (top-level YAML), one model `demo` on one backend `demo-backend` with
/// `endpoints` and `backend_extra` (backend YAML indented by four spaces).
pub fn config(endpoints: &[String], backend_extra: &str, top: &str) -> String {
    let eps: Vec<String> = endpoints
        .iter()
        .map(|u| format!("{{ url: \"{u}\" }}"))
        .collect();
    format!(
        "{top}\nlisteners:\n  data: {{ address: \"127.0.0.1:0\" }}\n  admin: {{ address: \"127.0.0.1:0\" }}\n\
         backends:\n  - name: demo-backend\n    endpoints: [{}]\n{backend_extra}\n\
         models:\n  - {{ name: demo, backend: demo-backend }}\n",
        eps.join(", ")
    )
}

/// A simulator with exact (not random) TTFT and inter-token latency.
pub async fn sim(ttft_ms: u64, itl_ms: u64) -> Simulator {
    sim_with(SimConfig {
        ttft: Duration::from_millis(ttft_ms),
        itl: Duration::from_millis(itl_ms),
        ..SimConfig::default()
    })
    .await
}

pub async fn sim_with(cfg: SimConfig) -> Simulator {
    Simulator::start("127.0.0.1:0".parse().unwrap(), cfg)
        .await
        .unwrap()
}

pub fn url(sim: &Simulator) -> String {
    format!("http://{}", sim.addr())
}

/// A loopback URL nothing listens on.
pub fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

// ---------------------------------------------------------------------------------------------
// Client

/// A chat completion request body: streamed, `max_tokens` long, with the usage chunk.
pub fn chat_stream(max_tokens: u32) -> String {
    json!({
        "model": "demo",
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": max_tokens,
        "stream": true,
        "stream_options": {"include_usage": true},
    })
    .to_string()
}

/// A whole response, each body frame stamped with the clock when it arrived.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub frames: Vec<(Instant, Bytes)>,
}

impl Reply {
    pub fn body(&self) -> Vec<u8> {
        self.frames.iter().flat_map(|(_, f)| f.to_vec()).collect()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body()).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body())
            )
        })
    }

    pub fn events(&self) -> Vec<(Instant, String)> {
        events(&self.frames)
    }
}

/// Each SSE `data:` payload with the time its frame arrived.
fn events(frames: &[(Instant, Bytes)]) -> Vec<(Instant, String)> {
    let mut out = Vec::new();
    let mut buf = String::new();
    for (t, f) in frames {
        buf.push_str(&String::from_utf8_lossy(f));
        while let Some(i) = buf.find("\n\n") {
            let ev: String = buf.drain(..i + 2).collect();
            for line in ev.lines() {
                if let Some(d) = line.strip_prefix("data: ") {
                    out.push((*t, d.to_owned()));
                }
            }
        }
    }
    out
}

/// Token events (chunks with generated text) among `events`.
pub fn token_events(events: &[(Instant, String)]) -> Vec<Instant> {
    events
        .iter()
        .filter(|(_, e)| e.contains("\"content\":\" ") || e.contains("\"text\":\" "))
        .map(|(t, _)| *t)
        .collect()
}

#[derive(Default)]
struct Progress {
    head: Option<(StatusCode, HeaderMap)>,
    frames: Vec<(Instant, Bytes)>,
    error: Option<String>,
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One request on its own HTTP/1.1 connection, running in the background; its progress can be
/// watched while the test moves the clock. Aborting it closes the connection.
pub struct Call {
    pub sent: Instant,
    progress: Arc<Mutex<Progress>>,
    task: JoinHandle<()>,
}

impl Call {
    pub fn post(addr: SocketAddr, path: &str, body: &str, headers: &[(&str, &str)]) -> Call {
        let mut b = Request::post(format!("http://{addr}{path}"))
            .header("content-type", "application/json")
            .header("host", addr.to_string());
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        Call::send(
            addr,
            b.body(Full::new(Bytes::from(body.to_owned()))).unwrap(),
        )
    }

    pub fn get(addr: SocketAddr, path: &str) -> Call {
        let req = Request::get(format!("http://{addr}{path}"))
            .header("host", addr.to_string())
            .body(Full::new(Bytes::new()))
            .unwrap();
        Call::send(addr, req)
    }

    pub fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> Call {
        let progress = Arc::new(Mutex::new(Progress::default()));
        let p = progress.clone();
        let sent = Instant::now();
        let task = tokio::spawn(async move {
            if let Err(e) = exchange(addr, req, &p).await {
                p.lock().unwrap().error = Some(e);
            }
        });
        Call {
            sent,
            progress,
            task,
        }
    }

    pub fn finished(&self) -> bool {
        self.task.is_finished()
    }

    pub fn events(&self) -> Vec<(Instant, String)> {
        events(&self.progress.lock().unwrap().frames)
    }

    /// Closes the connection, as a client that goes away.
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Waits (real time) until the response has ended; fails on a transport error.
    pub async fn reply(self) -> Reply {
        let task = &self.task;
        eventually("the response never ended", || async {
            if task.is_finished() {
                Ok(())
            } else {
                Err("still open".to_owned())
            }
        })
        .await;
        let mut p = self.progress.lock().unwrap();
        if let Some(e) = &p.error {
            panic!("request failed: {e}");
        }
        let (status, headers) = p.head.take().expect("a response head");
        Reply {
            status,
            headers,
            frames: std::mem::take(&mut p.frames),
        }
    }
}

async fn exchange(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
    p: &Mutex<Progress>,
) -> Result<(), String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let _conn = AbortOnDrop(tokio::spawn(conn).abort_handle());
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    let (parts, mut body) = resp.into_parts();
    p.lock().unwrap().head = Some((parts.status, parts.headers));
    while let Some(f) = body.frame().await {
        let f = f.map_err(|e| format!("body: {e}"))?;
        if let Ok(d) = f.into_data() {
            p.lock().unwrap().frames.push((Instant::now(), d));
        }
    }
    Ok(())
}

pub async fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    Call::post(addr, path, body, &[]).reply().await
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    Call::get(addr, path).reply().await
}

// ---------------------------------------------------------------------------------------------
// Admin

pub async fn metrics(admin: SocketAddr) -> String {
    let r = get(admin, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    String::from_utf8(r.body()).unwrap()
}

pub async fn metric(admin: SocketAddr, name: &str, filter: &[(&str, &str)]) -> f64 {
    metric_sum(&metrics(admin).await, name, filter)
}

/// Waits until `name` (summed over `filter`) is `value`.
pub async fn wait_metric(admin: SocketAddr, name: &str, filter: &[(&str, &str)], value: f64) {
    eventually(
        &format!("{name}{filter:?} never reached {value}"),
        || async {
            let v = metric(admin, name, filter).await;
            if v == value {
                Ok(())
            } else {
                Err(v.to_string())
            }
        },
    )
    .await;
}

/// Reads `name{labels...} value` samples matching every `label="value"` in `filter`, summed.
pub fn metric_sum(text: &str, name: &str, filter: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if n != name {
                return None;
            }
            let ok = filter
                .iter()
                .all(|(k, v)| labels.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
            ok.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// The endpoint with this URL in `GET /admin/endpoints` (of the first backend).
pub async fn endpoint(admin: SocketAddr, url: &str) -> Value {
    let v = get(admin, "/admin/endpoints").await.json();
    v["backends"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == url)
        .cloned()
        .unwrap_or_else(|| panic!("no endpoint {url} in {v}"))
}

/// Checks an endpoint's `ejection.remaining_seconds` (ends are kept to the millisecond).
pub fn assert_remaining(ep: &Value, seconds: f64) {
    let left = ep["ejection"]["remaining_seconds"].as_f64().unwrap_or(-1.0);
    assert!(
        left <= seconds && left > seconds - 0.001,
        "remaining {left}, not {seconds}: {ep}"
    );
}

/// Waits until the endpoint with this URL is in `state` (`healthy` or `ejected`).
pub async fn wait_state(admin: SocketAddr, url: &str, state: &str) -> Value {
    eventually(&format!("{url} never {state}"), || async {
        let ep = endpoint(admin, url).await;
        if ep["state"] == state {
            Ok(ep)
        } else {
            Err(ep.to_string())
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Health feed

/// A health feed as `infergate-control` serves it: `GET /v1/health?since=V` answers at once
/// when the document's version is above `V`, else when it next changes (long poll).
pub struct FeedServer {
    pub addr: SocketAddr,
    doc: Arc<watch::Sender<Value>>,
    since: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl FeedServer {
    pub async fn start(doc: Value) -> FeedServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let doc = Arc::new(watch::channel(doc).0);
        let since = Arc::new(AtomicU64::new(0));
        let (d, s) = (doc.clone(), since.clone());
        let task = tokio::spawn(async move {
            // Connections live in the set: stopping the server closes them all.
            let mut conns = JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let (d, s) = (d.clone(), s.clone());
                conns.spawn(async move {
                    let svc = service_fn(move |req| feed_reply(req, d.clone(), s.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        FeedServer {
            addr,
            doc,
            since,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/v1/health", self.addr)
    }

    pub fn publish(&self, doc: Value) {
        self.doc.send_replace(doc);
    }

    /// The highest `since` a reader asked with: the version it has applied.
    pub fn applied(&self) -> u64 {
        self.since.load(Ordering::SeqCst)
    }

    /// Waits until a reader has applied `version`.
    pub async fn wait_applied(&self, version: u64) {
        eventually(&format!("feed version {version} never read"), || async {
            let v = self.applied();
            if v >= version {
                Ok(())
            } else {
                Err(format!("since={v}"))
            }
        })
        .await;
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn feed_reply(
    req: Request<Incoming>,
    doc: Arc<watch::Sender<Value>>,
    since: Arc<AtomicU64>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let asked: u64 = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("since="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    since.fetch_max(asked, Ordering::SeqCst);
    let mut rx = doc.subscribe();
    let current = loop {
        let d = rx.borrow_and_update().clone();
        if d["version"].as_u64().unwrap_or(0) > asked {
            break d;
        }
        if rx.changed().await.is_err() {
            break d;
        }
    };
    Ok(Response::new(Full::new(Bytes::from(current.to_string()))))
}

/// A feed document of node `node-a` with GPUs 0 and 1; those in `unhealthy` with a reason.
pub fn gpu_doc(version: u64, unhealthy: &[(u32, &str)]) -> Value {
    let gpus: Vec<Value> = (0..2)
        .map(|i| match unhealthy.iter().find(|(g, _)| *g == i) {
            Some((_, reason)) => json!({"index": i, "state": "unhealthy", "reasons": [reason]}),
            None => json!({"index": i, "state": "healthy", "reasons": []}),
        })
        .collect();
    json!({"version": version, "node": "node-a", "read_at_ms": 0, "gpus": gpus, "models": []})
}
