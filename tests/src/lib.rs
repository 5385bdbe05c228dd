//! Harness for end-to-end tests: starts the real `infergate` and `infergate-sim` binaries on
//! port 0, reads their bound addresses from their first log lines, and kills them on drop.
//!
//! The binaries are taken from the cargo target directory this test runs from (or from
//! `INFERGATE_BIN_DIR`); `scripts/test` builds them before running the tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Where the workspace's binaries are.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("INFERGATE_BIN_DIR") {
        return PathBuf::from(d);
    }
    // target/<profile>/deps/<test-binary>
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} not found: build the binaries first (cargo build --workspace) or run scripts/test",
        p.display()
    );
    p
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A child process killed on drop, with its output kept for failure messages.
pub struct Proc {
    pub child: Child,
    pub output: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Sends a signal (e.g. "TERM", "HUP") to the process.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("process still running");
        let ok = std::process::Command::new("kill")
            .args([format!("-{sig}"), pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {pid} failed");
    }

    /// Waits for the process to exit and returns its exit code.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .expect("process did not exit in time")
            .unwrap();
        status.code()
    }

    /// Spawns `cmd` and waits until one of its stdout lines yields an address for each of
    /// `wants` (in order, each parsed by the given function).
    pub async fn spawn(
        mut cmd: Command,
        wants: &[fn(&str) -> Option<SocketAddr>],
    ) -> (Proc, Vec<SocketAddr>) {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .env_remove("RUST_LOG")
            .env_remove("INFERGATE_LOG");
        let mut child = cmd.spawn().expect("spawn");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for (stream, tx) in [
            (
                Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                tx.clone(),
            ),
            (Box::new(stderr), tx),
        ] {
            let out = output.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    out.lock().unwrap().push(l.clone());
                    let _ = tx.send(l);
                }
            });
        }
        let mut addrs = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while addrs.len() < wants.len() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(line)) => {
                    if let Some(a) = wants[addrs.len()](&line) {
                        addrs.push(a);
                    }
                }
                _ => panic!(
                    "process did not report its addresses; output:\n{}",
                    output.lock().unwrap().join("\n")
                ),
            }
        }
        (Proc { child, output }, addrs)
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }
}

/// A running `infergate-sim`.
pub struct Sim {
    pub proc: Proc,
    pub addr: SocketAddr,
}

impl Sim {
    pub async fn start(args: &[&str]) -> Sim {
        let mut cmd = Command::new(bin("infergate-sim"));
        cmd.args(["--listen", "127.0.0.1:0"]).args(args);
        let (proc, addrs) = Proc::spawn(
            cmd,
            &[|l: &str| {
                l.strip_prefix("infergate-sim listening on http://")?
                    .trim()
                    .parse()
                    .ok()
            }],
        )
        .await;
        Sim {
            proc,
            addr: addrs[0],
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Starts `infergate-control run --config CONFIG` on the fake NVML library, with `env`, and
/// returns it with the address of its health feed.
pub async fn start_control(
    config: &std::path::Path,
    env: &[(&str, &std::path::Path)],
) -> (Proc, SocketAddr) {
    let lib = bin_dir().join("libinfergate_fake_nvml.so");
    assert!(
        lib.exists(),
        "{} missing: run scripts/test (cargo build --workspace)",
        lib.display()
    );
    let mut cmd = Command::new(bin("infergate-control"));
    cmd.args(["run", "--config"])
        .arg(config)
        .arg("--nvml-library")
        .arg(&lib);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (proc, addrs) = Proc::spawn(cmd, &[|l: &str| listening(l, "control")]).await;
    (proc, addrs[0])
}

fn listening(line: &str, which: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v["message"] == "listening" && v["listener"] == which {
        v["addr"].as_str()?.parse().ok()
    } else {
        None
    }
}

/// A running `infergate run`, with its config in a temporary file.
pub struct Gateway {
    pub proc: Proc,
    pub data: SocketAddr,
    pub admin: SocketAddr,
    pub config_path: PathBuf,
}

impl Gateway {
    /// Starts the gateway with `config` (YAML); listeners should use port 0.
    pub async fn start(config: &str) -> Gateway {
        Self::start_with_env(config, &[]).await
    }

    /// Starts the gateway with extra environment variables.
    pub async fn start_with_env(config: &str, env: &[(&str, &str)]) -> Gateway {
        let config_path = temp_path("gateway.yaml");
        std::fs::write(&config_path, config).unwrap();
        let mut cmd = Command::new(bin("infergate"));
        cmd.args(["run", "--config"]).arg(&config_path);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let (proc, addrs) = Proc::spawn(
            cmd,
            &[
                |l: &str| listening(l, "data"),
                |l: &str| listening(l, "admin"),
            ],
        )
        .await;
        Gateway {
            proc,
            data: addrs[0],
            admin: addrs[1],
            config_path,
        }
    }

    /// A config with one model `demo` on one backend with `endpoints`, plus extra backend YAML.
    pub fn config(endpoints: &[String], backend_extra: &str) -> String {
        let eps: Vec<String> = endpoints
            .iter()
            .map(|u| format!("{{ url: \"{u}\" }}"))
            .collect();
        format!(
            "listeners:\n  data: {{ address: \"127.0.0.1:0\" }}\n  admin: {{ address: \"127.0.0.1:0\" }}\n\
             backends:\n  - name: demo-backend\n    endpoints: [{}]\n{backend_extra}\n\
             models:\n  - {{ name: demo, backend: demo-backend }}\n",
            eps.join(", ")
        )
    }

    /// Sends a signal (e.g. "TERM", "HUP") to the gateway process.
    pub fn signal(&self, sig: &str) {
        self.proc.signal(sig);
    }

    /// Waits for the gateway process to exit and returns its exit code.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        self.proc.wait_exit(within).await
    }

    /// Rewrites the config file.
    pub fn write_config(&self, config: &str) {
        // Write then rename, as config management tools do, so the watcher never reads half.
        let tmp = self.config_path.with_extension("tmp");
        std::fs::write(&tmp, config).unwrap();
        std::fs::rename(&tmp, &self.config_path).unwrap();
    }

    pub async fn metric(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        metric_at(self.admin, name, filter).await
    }

    /// Waits until `metric` (summed over `filter`) reaches `value`.
    pub async fn wait_metric(
        &self,
        name: &str,
        filter: &[(&str, &str)],
        value: f64,
        within: Duration,
    ) {
        wait_metric_at(self.admin, name, filter, value, within).await;
    }

    pub async fn metrics(&self) -> String {
        metrics_at(self.admin).await
    }

    /// Waits until the endpoint with this URL is in `state` (`healthy` or `ejected`) and
    /// returns it.
    pub async fn wait_endpoint_state(
        &self,
        url: &str,
        state: &str,
        within: Duration,
    ) -> serde_json::Value {
        wait_for(&format!("{url} never {state}"), within, || async {
            let ep = self.endpoint(url).await;
            if ep["state"] == state {
                Ok(ep)
            } else {
                Err(ep.to_string())
            }
        })
        .await
    }

    /// Waits until a line of the gateway's log contains `text`.
    pub async fn wait_log(&self, text: &str, within: Duration) {
        wait_until(&format!("no log line with {text:?}"), within, || async {
            self.proc.output().contains(text)
        })
        .await;
    }

    /// The endpoint with this URL in `GET /admin/endpoints` (of the first backend).
    pub async fn endpoint(&self, url: &str) -> serde_json::Value {
        let v = get(self.admin, "/admin/endpoints").await.json();
        v["backends"][0]["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["url"] == url)
            .cloned()
            .unwrap_or_else(|| panic!("no endpoint {url} in {v}"))
    }
}

/// The Prometheus text served at `GET /metrics` on `addr` (gateway admin, simulator, control).
pub async fn metrics_at(addr: SocketAddr) -> String {
    let r = get(addr, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    String::from_utf8(r.body().to_vec()).unwrap()
}

/// `name` in the metrics at `addr`, summed over the series matching `filter`.
pub async fn metric_at(addr: SocketAddr, name: &str, filter: &[(&str, &str)]) -> f64 {
    metric_sum(&metrics_at(addr).await, name, filter)
}

/// Waits until `name` (summed over `filter`) in the metrics at `addr` reaches `value`.
pub async fn wait_metric_at(
    addr: SocketAddr,
    name: &str,
    filter: &[(&str, &str)],
    value: f64,
    within: Duration,
) {
    wait_for(
        &format!("{name}{filter:?} never reached {value}"),
        within,
        || async {
            let v = metric_at(addr, name, filter).await;
            if v == value {
                Ok(())
            } else {
                Err(format!("{v}"))
            }
        },
    )
    .await;
}

/// How often [`wait_for`] checks its condition.
pub const POLL: Duration = Duration::from_millis(20);

/// Checks `check` every [`POLL`] until it returns `Ok`, and returns its value; fails after
/// `within` with `what` and the last `Err` (the state last seen).
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) => assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}; last seen: {last}"
            ),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `cond` holds; see [`wait_for`].
pub async fn wait_until<F, Fut>(what: &str, within: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_for(what, within, || {
        let f = cond();
        async move {
            if f.await {
                Ok(())
            } else {
                Err("false".to_owned())
            }
        }
    })
    .await;
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config_path);
    }
}

/// A loopback address nothing listens on: bound to port 0, read, closed.
pub fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// An `http://` URL on a loopback port nothing listens on.
pub fn closed_port_url() -> String {
    format!("http://{}", free_port())
}

/// A unique path in the system temp directory.
pub fn temp_path(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "infergate-e2e-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A response with every body frame and the time it arrived.
pub struct Reply {
    pub status: StatusCode,
    pub version: http::Version,
    pub headers: HeaderMap,
    pub sent: Instant,
    pub head_at: Instant,
    pub frames: Vec<(Instant, Bytes)>,
}

impl Reply {
    pub fn body(&self) -> Bytes {
        let mut v = Vec::new();
        for (_, f) in &self.frames {
            v.extend_from_slice(f);
        }
        Bytes::from(v)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body()).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body())
            )
        })
    }

    /// Each SSE `data:` payload with the time its frame arrived.
    pub fn events(&self) -> Vec<(Instant, String)> {
        let mut out = Vec::new();
        let mut buf = String::new();
        for (t, f) in &self.frames {
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
}

/// Sends one request over a fresh HTTP/1.1 (or h2c) connection and reads the whole response.
pub async fn send(addr: SocketAddr, req: Request<Full<Bytes>>, h2: bool) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let io = TokioIo::new(stream);
    let sent = Instant::now();
    let resp = if h2 {
        let (mut s, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .unwrap();
        tokio::spawn(conn);
        s.send_request(req).await.unwrap()
    } else {
        let (mut s, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        s.send_request(req).await.unwrap()
    };
    let head_at = Instant::now();
    let (parts, mut body) = resp.into_parts();
    let mut frames = Vec::new();
    while let Some(f) = body.frame().await {
        let f = f.unwrap();
        if let Ok(d) = f.into_data() {
            frames.push((Instant::now(), d));
        }
    }
    Reply {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        sent,
        head_at,
        frames,
    }
}

pub fn post_request(
    addr: SocketAddr,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Request<Full<Bytes>> {
    let mut b = Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .header("host", addr.to_string());
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
        .unwrap()
}

pub async fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    post_with(addr, path, body, &[]).await
}

pub async fn post_with(
    addr: SocketAddr,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Reply {
    send(addr, post_request(addr, path, body, headers), false).await
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    get_with(addr, path, &[]).await
}

pub async fn get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    request(addr, http::Method::GET, path, headers).await
}

pub async fn request(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("host", addr.to_string());
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(addr, b.body(Full::new(Bytes::new())).unwrap(), false).await
}

/// Outcome of one streamed request, as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamResult {
    /// 200 and the stream ended with `[DONE]`.
    Complete,
    /// Failed before any byte of the body arrived (status, connection error).
    FailedBeforeFirstByte(String),
    /// Some body arrived, then the stream ended without `[DONE]` (cut).
    Cut(String),
}

/// Sends one streamed chat completion and classifies how it ended. Never panics on a failure.
pub async fn stream_once(addr: SocketAddr, body: &str) -> StreamResult {
    let Ok(stream) = TcpStream::connect(addr).await else {
        return StreamResult::FailedBeforeFirstByte("connect refused".into());
    };
    let io = TokioIo::new(stream);
    let Ok((mut s, conn)) = hyper::client::conn::http1::handshake(io).await else {
        return StreamResult::FailedBeforeFirstByte("handshake".into());
    };
    tokio::spawn(conn);
    let req = post_request(addr, "/v1/chat/completions", body, &[]);
    let resp = match s.send_request(req).await {
        Ok(r) => r,
        Err(e) => return StreamResult::FailedBeforeFirstByte(format!("send: {e}")),
    };
    if resp.status() != StatusCode::OK {
        return StreamResult::FailedBeforeFirstByte(format!("status {}", resp.status()));
    }
    let mut body = resp.into_body();
    let mut all = Vec::new();
    loop {
        match body.frame().await {
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    all.extend_from_slice(&d);
                }
            }
            Some(Err(e)) => {
                return if all.is_empty() {
                    StreamResult::FailedBeforeFirstByte(format!("body: {e}"))
                } else {
                    StreamResult::Cut(format!("body error after {} bytes: {e}", all.len()))
                }
            }
            None => break,
        }
    }
    let text = String::from_utf8_lossy(&all);
    if text.trim_end().ends_with("data: [DONE]") {
        StreamResult::Complete
    } else if all.is_empty() {
        StreamResult::FailedBeforeFirstByte("empty body".into())
    } else {
        StreamResult::Cut(
            text.lines()
                .rev()
                .find(|l| !l.is_empty())
                .unwrap_or("")
                .to_owned(),
        )
    }
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
