//! Control's HTTP API: `GET /v1/health` (long-poll with `?since=VERSION&wait=30s`),
//! `GET /healthz`, `GET /metrics`, the warmup jobs (`/v1/warmup`) and the releases
//! (`/v1/releases`, see [`crate::releases::api`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::feed::{parse_query, Feed};

/// What the API serves from.
pub struct Api {
    pub feed: Feed,
    pub metrics: Arc<prometheus::Registry>,
    pub warmups: crate::warmup::Warmups,
    pub releases: Arc<crate::releases::Releases>,
}

/// Largest warmup job body accepted.
const MAX_JOB_BYTES: usize = 64 * 1024;

/// Serves the API on `listener` until the task is aborted.
pub fn spawn(listener: TcpListener, api: Arc<Api>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let api = api.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(api.clone(), req));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}

/// Binds `addr`; the bound address is returned for logs and tests.
pub async fn bind(addr: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let l = TcpListener::bind(addr).await?;
    let a = l.local_addr()?;
    Ok((l, a))
}

async fn handle(
    api: Arc<Api>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if crate::releases::api::owns(req.uri().path()) {
        return Ok(releases(&api, req).await);
    }
    let resp = match (req.method(), req.uri().path()) {
        (&Method::GET, "/v1/health") => {
            let (since, wait) = parse_query(req.uri().query());
            let doc = api.feed.wait_above(since, wait).await;
            json(StatusCode::OK, serde_json::to_vec(&doc).unwrap_or_default())
        }
        (&Method::GET, "/healthz") => json(StatusCode::OK, br#"{"status":"ok"}"#.to_vec()),
        (&Method::GET, "/v1/warmup") => json(
            StatusCode::OK,
            serde_json::to_vec(&serde_json::json!({"jobs": api.warmups.list()}))
                .unwrap_or_default(),
        ),
        (&Method::POST, "/v1/warmup") => {
            let w = &api.warmups;
            let body = match http_body_util::Limited::new(req.into_body(), MAX_JOB_BYTES)
                .collect()
                .await
            {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    return Ok(error(
                        StatusCode::BAD_REQUEST,
                        &format!("cannot read the job: {e}"),
                    ))
                }
            };
            match serde_json::from_slice::<infergate_warmup::WarmupJob>(&body) {
                Ok(job) => match w.start(job) {
                    Ok(id) => json(
                        StatusCode::ACCEPTED,
                        serde_json::to_vec(&serde_json::json!({"id": id})).unwrap_or_default(),
                    ),
                    Err(e) => error(StatusCode::BAD_REQUEST, &e),
                },
                Err(e) => error(StatusCode::BAD_REQUEST, &format!("invalid job: {e}")),
            }
        }
        (&Method::GET, "/metrics") => {
            let mut out = Vec::new();
            use prometheus::Encoder as _;
            let _ = prometheus::TextEncoder::new().encode(&api.metrics.gather(), &mut out);
            let mut r = Response::new(Full::new(Bytes::from(out)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        _ => json(StatusCode::NOT_FOUND, br#"{"error":"not found"}"#.to_vec()),
    };
    Ok(resp)
}

async fn releases(api: &Api, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let limit = crate::releases::api::MAX_SPEC_BYTES;
    let body = match http_body_util::Limited::new(req.into_body(), limit)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the body (at most {limit} bytes): {e}"),
            )
        }
    };
    let a = crate::releases::api::handle(&api.releases, &method, &path, &body);
    let mut r = Response::new(Full::new(Bytes::from(a.body)));
    *r.status_mut() = a.status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    r
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json(
        status,
        serde_json::to_vec(&serde_json::json!({"error": message})).unwrap_or_default(),
    )
}

fn json(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
