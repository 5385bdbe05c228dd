//! A mock Kubernetes API server (hyper on 127.0.0.1:0) for `KubeActions`.
//!
//! Replies are scripted per (method, path) as a queue; every request is recorded (method, path,
//! query, Content-Type, Authorization, body) for the test to assert. A request with no scripted
//! reply left gets a 500 `Status` and is recorded all the same, so that a test sees it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::time::Instant;

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Decoded `key=value` pairs of the query string.
    pub query: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    /// `Value::Null` when the body is empty.
    pub body: Value,
    pub at: Instant,
}

impl Recorded {
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `METHOD path`
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

type Routes = HashMap<(String, String), VecDeque<(u16, Value)>>;

#[derive(Clone, Default)]
struct Shared {
    routes: Arc<Mutex<Routes>>,
    log: Arc<Mutex<Vec<Recorded>>>,
}

pub struct MockApi {
    url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockApi {
    pub async fn start() -> MockApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Shared::default();
        let server = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let shared = server.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        MockApi { url, shared, task }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Queues a reply to the next `method path` request.
    pub fn on(&self, method: &str, path: &str, status: u16, body: Value) -> &Self {
        self.shared
            .routes
            .lock()
            .unwrap()
            .entry((method.into(), path.into()))
            .or_default()
            .push_back((status, body));
        self
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.log.lock().unwrap().clone()
    }

    /// `METHOD path` of every request so far.
    pub fn lines(&self) -> Vec<String> {
        self.requests().iter().map(Recorded::line).collect()
    }

    /// Replies scripted but never asked for.
    pub fn unused(&self) -> Vec<String> {
        let routes = self.shared.routes.lock().unwrap();
        let mut left: Vec<String> = routes
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|((m, p), q)| format!("{m} {p} ×{}", q.len()))
            .collect();
        left.sort();
        left
    }
}

async fn handle(
    shared: Shared,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(form_pairs).unwrap_or_default();
    let header = |name: hyper::header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header(hyper::header::CONTENT_TYPE);
    let authorization = header(hyper::header::AUTHORIZATION);
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    shared.log.lock().unwrap().push(Recorded {
        method: method.clone(),
        path: path.clone(),
        query,
        content_type,
        authorization,
        body,
        at: Instant::now(),
    });
    let reply = shared
        .routes
        .lock()
        .unwrap()
        .get_mut(&(method.clone(), path.clone()))
        .and_then(VecDeque::pop_front);
    let (status, body) = reply.unwrap_or_else(|| {
        (
            500,
            status_body(
                500,
                "InternalError",
                &format!("mock: no reply scripted for {method} {path}"),
            ),
        )
    });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        "application/json".parse().unwrap(),
    );
    Ok(response)
}

/// Decodes `a=b&c=d` (percent-encoding and `+`).
fn form_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// A Kubernetes `Status` failure body.
pub fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

/// A Node object.
pub fn node(name: &str, resource_version: &str, spec: Value, annotations: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "resourceVersion": resource_version,
            "annotations": annotations,
        },
        "spec": spec,
    })
}

/// A model-server Pod on `node`.
pub fn pod(ns: &str, name: &str, node: &str, gpus: Option<&str>) -> Value {
    let mut annotations = json!({});
    if let Some(g) = gpus {
        annotations["infergate.io/gpus"] = json!(g);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": { "app.kubernetes.io/component": "model-server" },
            "annotations": annotations,
        },
        "spec": { "nodeName": node, "containers": [{ "name": "vllm", "image": "vllm" }] },
        "status": { "phase": "Running" },
    })
}

/// A list object.
pub fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": kind,
        "metadata": { "resourceVersion": "1" },
        "items": items,
    })
}
