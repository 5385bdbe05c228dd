//! Helpers of the `infergate-bench` tests: the in-process simulator, the binary, temporary
//! files, and a hand-written server for responses the simulator never sends.

// Test helpers outside #[test] fns are test code too; not every test file uses every helper.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use infergate_loadtest::sim::{SimConfig, Simulator};
use serde_json::Value;
use tokio::sync::Mutex;

pub const BIN: &str = env!("CARGO_BIN_EXE_infergate-bench");

pub const MS: Duration = Duration::from_millis(1);

/// Serializes the timing-sensitive tests of one test binary.
pub static TIMING: Mutex<()> = Mutex::const_new(());

pub async fn sim(cfg: SimConfig) -> Simulator {
    Simulator::start("127.0.0.1:0".parse().unwrap(), cfg)
        .await
        .unwrap()
}

/// A simulator with `ttft` and `itl` (exact) and `max_tokens` output tokens by default.
pub async fn sim_timing(ttft_ms: u64, itl_ms: u64) -> Simulator {
    sim(SimConfig {
        ttft: Duration::from_millis(ttft_ms),
        itl: Duration::from_millis(itl_ms),
        seed: Some(1),
        ..SimConfig::default()
    })
    .await
}

pub fn url(s: &Simulator) -> String {
    format!("http://{}", s.addr())
}

/// A unique temporary path.
pub fn tmp(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "infergate-bench-test-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn assert_ok(&self) {
        assert_eq!(
            self.code,
            Some(0),
            "infergate-bench failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
    }
}

/// Runs the binary with `args`.
pub async fn exec(args: &[&str]) -> Run {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(BIN)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("infergate-bench did not finish within 120 s")
    .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `infergate-bench run --url URL --model demo ARGS --out TMP --no-progress`; returns the run
/// and its JSON document.
pub async fn run(url: &str, args: &[&str]) -> (Run, Value, PathBuf) {
    let out = tmp("run.json");
    let out_s = out.to_str().unwrap().to_owned();
    let mut all = vec!["run", "--url", url, "--model", "demo", "--no-progress"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", &out_s]);
    let r = exec(&all).await;
    r.assert_ok();
    let doc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    (r, doc, out)
}

/// The summary of step `i`.
pub fn summary(doc: &Value, i: usize) -> &Value {
    &doc["steps"][i]["summary"]
}

pub fn records(doc: &Value, i: usize) -> &Vec<Value> {
    doc["steps"][i]["records"].as_array().unwrap()
}

pub fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The Python of the project's virtual environment (`PYTHON`, set by scripts/test), else
/// `python3`.
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Validates `doc_path` against docs/bench.schema.json with Python's `jsonschema`.
pub fn validate_schema(doc_path: &std::path::Path) {
    let errors = schema_errors(doc_path);
    assert!(
        errors.is_none(),
        "schema validation failed with {} (needs the `jsonschema` package: scripts/test installs \
         it in .venv and exports PYTHON):\n{}",
        python(),
        errors.unwrap_or_default()
    );
}

/// Checks `doc_path` against docs/bench.schema.json with Python's `jsonschema`: `None` when it
/// is valid, else the output of the failed check.
pub fn schema_errors(doc_path: &std::path::Path) -> Option<String> {
    let schema = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/bench.schema.json");
    let script = "import json, sys\n\
        import jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        doc = json.load(open(sys.argv[2]))\n\
        cls = jsonschema.validators.validator_for(schema)\n\
        cls.check_schema(schema)\n\
        cls(schema, format_checker=cls.FORMAT_CHECKER).validate(doc)\n\
        print('valid')\n";
    let py = python();
    let out = std::process::Command::new(&py)
        .args(["-c", script])
        .arg(&schema)
        .arg(doc_path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {py}: {e}"));
    (!out.status.success()).then(|| {
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A server that answers every request with the SSE events (or raw body) of `body_for(path)`,
/// with a 200 and `text/event-stream`; each item is sent as its own frame after `gap`.
pub async fn scripted_server(
    body_for: fn(&str) -> Vec<&'static [u8]>,
    gap: Duration,
) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| async move {
                    let path = req.uri().path().to_owned();
                    let _ = req.into_body().collect().await;
                    let parts = body_for(&path);
                    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
                    tokio::spawn(async move {
                        for p in parts {
                            tokio::time::sleep(gap).await;
                            if tx.send(Bytes::from_static(p)).await.is_err() {
                                return;
                            }
                        }
                    });
                    let body = ChanBody(rx);
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("content-type", "text/event-stream")
                            .body(body)
                            .unwrap(),
                    )
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// A response body fed by a channel, one frame per message.
struct ChanBody(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for ChanBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}
