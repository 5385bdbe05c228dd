//! A fake kubelet PodResources server for tests: serves `List` over HTTP/2 on a unix socket
//! from a state the test sets, and can change, while it runs.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use infergate_podresources::fake::{gpu_pod, FakeServer};
//! let fake = FakeServer::start("/tmp/x/kubelet.sock").await?;
//! fake.set_pods(vec![gpu_pod("models", "llama-0", "vllm", &["GPU-aaaa"])]);
//! # Ok(()) }
//! ```

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use tokio::net::UnixListener;
use tokio::task::JoinHandle;

use crate::client::LIST_PATH;
use crate::grpc::{self, code, Status};
use crate::proto::{self, ContainerDevices, ContainerResources, PodResources};

/// What `List` answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FakeState {
    pub pods: Vec<PodResources>,
    /// When set, `List` fails with this status (a trailers-only response).
    pub status: Option<FakeStatus>,
    /// Time each answer waits before it is sent, in milliseconds.
    pub delay_ms: u64,
    /// When set, these bytes are the body (with `grpc-status: 0`) instead of the pods.
    #[serde(skip)]
    pub raw_body: Option<Vec<u8>>,
}

/// A gRPC status to fail with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakeStatus {
    pub code: u32,
    #[serde(default)]
    pub message: String,
}

/// Where each call's state comes from.
pub type Source = Arc<dyn Fn() -> FakeState + Send + Sync>;

/// A running fake; stops and removes its socket when dropped.
pub struct FakeServer {
    path: PathBuf,
    state: Arc<Mutex<FakeState>>,
    requests: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl FakeServer {
    /// Serves an empty pod list on `path` (a stale socket file there is replaced).
    pub async fn start(path: impl Into<PathBuf>) -> std::io::Result<FakeServer> {
        let path = path.into();
        let state = Arc::new(Mutex::new(FakeState::default()));
        let source: Source = {
            let state = state.clone();
            Arc::new(move || lock(&state).clone())
        };
        let listener = bind(&path)?;
        let requests = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(serve(listener, source, requests.clone()));
        Ok(FakeServer {
            path,
            state,
            requests,
            task,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pods the next calls list; clears a failure set with [`FakeServer::fail_with`].
    pub fn set_pods(&self, pods: Vec<PodResources>) {
        let mut s = lock(&self.state);
        s.pods = pods;
        s.status = None;
        s.raw_body = None;
    }

    /// Replaces the whole state.
    pub fn set_state(&self, state: FakeState) {
        *lock(&self.state) = state;
    }

    /// Makes the next calls fail with a gRPC status.
    pub fn fail_with(&self, code: u32, message: &str) {
        lock(&self.state).status = Some(FakeStatus {
            code,
            message: message.to_owned(),
        });
    }

    /// `List` calls answered so far (well-formed ones only).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

fn lock(state: &Mutex<FakeState>) -> std::sync::MutexGuard<'_, FakeState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Binds a unix socket at `path`, removing a file already there.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    UnixListener::bind(path)
}

/// A pod with one container holding `nvidia.com/gpu` devices `ids`.
pub fn gpu_pod(namespace: &str, name: &str, container: &str, ids: &[&str]) -> PodResources {
    PodResources {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        containers: vec![ContainerResources {
            name: container.to_owned(),
            devices: vec![ContainerDevices {
                resource_name: "nvidia.com/gpu".to_owned(),
                device_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
            }],
        }],
    }
}

/// Serves `List` on `listener`, each call from `source`, counting calls in `requests`.
pub async fn serve(listener: UnixListener, source: Source, requests: Arc<AtomicU64>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let (source, requests) = (source.clone(), requests.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| answer(req, source.clone(), requests.clone()));
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

type Body = BoxBody<Bytes, Infallible>;

async fn answer(
    req: Request<Incoming>,
    source: Source,
    requests: Arc<AtomicU64>,
) -> Result<Response<Body>, Infallible> {
    if req.method() != Method::POST || req.uri().path() != LIST_PATH {
        return Ok(status_only(code::UNIMPLEMENTED, "only List is served"));
    }
    let body = match Limited::new(req.into_body(), 1 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(status_only(code::INVALID_ARGUMENT, &e.to_string())),
    };
    if let Err(e) =
        grpc::unframe(&body).and_then(|m| proto::decode_list_request(m).map_err(|e| e.to_string()))
    {
        return Ok(status_only(code::INVALID_ARGUMENT, &e));
    }
    requests.fetch_add(1, Ordering::Relaxed);
    let state = source();
    if state.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(state.delay_ms)).await;
    }
    if let Some(s) = state.status {
        return Ok(status_only(s.code, &s.message));
    }
    let message = match state.raw_body {
        Some(raw) => Bytes::from(raw),
        None => grpc::frame(&proto::encode_list_response(&state.pods)),
    };
    let trailers = grpc::status_headers(&Status {
        code: code::OK,
        message: String::new(),
    });
    let body = Full::new(message)
        .with_trailers(std::future::ready(Some(Ok::<_, Infallible>(trailers))))
        .boxed();
    Ok(grpc_response(body, HeaderMap::new()))
}

/// A trailers-only response: the status in the headers, no body.
fn status_only(code: u32, message: &str) -> Response<Body> {
    let headers = grpc::status_headers(&Status {
        code,
        message: message.to_owned(),
    });
    grpc_response(Empty::new().boxed(), headers)
}

fn grpc_response(body: Body, extra: HeaderMap) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(grpc::CONTENT_TYPE),
    );
    r.headers_mut().extend(extra);
    r
}
