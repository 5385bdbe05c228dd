//! One attempt on one endpoint, up to the commit point (the response head and its first body
//! frame under the first-token deadline), and the response passed through after it.

use std::error::Error as _;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::{timeout_at, Instant};

use crate::backend::BackendRt;
use crate::body::{Exchange, GatewayBody, ObservedBody};
use crate::endpoint::Failure;
use crate::error::{ErrorKind, ProxyError};
use crate::headers::{strip_hop_by_hop, upstream_request};

/// A failed attempt: the error, the endpoint failure it stands for, and, for a retryable
/// status, the upstream's response so that it can be passed through when no retry follows.
pub struct Failed {
    pub error: ProxyError,
    pub failure: Option<Failure>,
    pub exchange: Exchange,
    pub passthrough: Option<(http::response::Parts, Incoming)>,
}

/// One attempt on endpoint `idx`. Waits for the response head and its first body frame under
/// the first-token deadline: until then every failure is still a clean error response.
pub async fn attempt(
    backend: &BackendRt,
    idx: usize,
    parts: &http::request::Parts,
    body: Bytes,
    request_id: &HeaderValue,
    mut exchange: Exchange,
    total_deadline: Instant,
) -> Result<Response<GatewayBody>, Box<Failed>> {
    let ep = &backend.endpoints[idx];
    let t = backend.timeouts;
    let sent = Instant::now();
    let first_deadline = (sent + t.first_token).min(total_deadline);
    let first_kind = if first_deadline == total_deadline {
        ErrorKind::TotalTimeout
    } else {
        ErrorKind::FirstTokenTimeout
    };
    let mut upstream_req = upstream_request(parts, body, ep, request_id);
    if let Some(o) = exchange.hooks().obs.as_mut() {
        o.attempt_started(&ep.state.url, upstream_req.headers_mut());
    }
    let fail = |exchange: Exchange, error: ProxyError| {
        let failure = error.outcome().failure();
        Err(Box::new(Failed {
            error,
            failure,
            exchange,
            passthrough: None,
        }))
    };

    // The request is handed to the connection now: the end of the overhead's first part.
    exchange.hooks().dispatched(Instant::now());
    let resp = match timeout_at(first_deadline, backend.client.request(upstream_req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return fail(exchange, classify(&e, &ep.state.url)),
        Err(_) => {
            let msg = format!("{} sent no response in time", ep.state.url);
            return fail(exchange, ProxyError::new(first_kind, msg));
        }
    };
    exchange.set_ttfb(sent.elapsed());
    if let Some(o) = exchange.hooks().obs.as_mut() {
        o.attempt_status(resp.status().as_u16());
    }
    let (rparts, mut incoming) = resp.into_parts();
    if backend.retry.retries_status(rparts.status) {
        let failure = rparts
            .status
            .is_server_error()
            .then_some(Failure::Status5xx);
        let error = ProxyError::new(
            ErrorKind::UpstreamFailed,
            format!("{} answered {}", ep.state.url, rparts.status),
        );
        return Err(Box::new(Failed {
            error,
            failure,
            exchange,
            passthrough: Some((rparts, incoming)),
        }));
    }
    // Commit at the first token: wait for the first body frame before answering.
    let first = if rparts.status.is_success() {
        match timeout_at(first_deadline, incoming.frame()).await {
            Ok(Some(Ok(f))) => Some(f),
            Ok(None) => None,
            Ok(Some(Err(e))) => {
                let msg = format!("{} failed before the first byte: {e}", ep.state.url);
                return fail(exchange, ProxyError::new(ErrorKind::UpstreamFailed, msg));
            }
            Err(_) => {
                let msg = format!("{} sent no first event in time", ep.state.url);
                return fail(exchange, ProxyError::new(first_kind, msg));
            }
        }
    } else {
        None
    };
    Ok(respond(
        rparts,
        incoming,
        first,
        exchange,
        backend,
        total_deadline,
    ))
}

/// Passes a response that was held back for a possible retry through to the client.
pub fn finish_response(
    (rparts, incoming): (http::response::Parts, Incoming),
    exchange: Exchange,
    backend: &BackendRt,
) -> Response<GatewayBody> {
    let deadline = Instant::now() + backend.timeouts.idle;
    respond(
        rparts,
        incoming,
        None,
        exchange,
        backend,
        deadline.max(Instant::now()),
    )
}

fn respond(
    mut rparts: http::response::Parts,
    incoming: Incoming,
    first: Option<http_body::Frame<Bytes>>,
    exchange: Exchange,
    backend: &BackendRt,
    total_deadline: Instant,
) -> Response<GatewayBody> {
    let sse = rparts.status.is_success() && is_event_stream(&rparts.headers);
    strip_hop_by_hop(&mut rparts.headers);
    if sse {
        rparts.headers.remove(header::CONTENT_LENGTH);
    }
    rparts.version = Version::HTTP_11;
    let status = rparts.status;
    let body = ObservedBody::new(
        incoming,
        first,
        sse,
        exchange,
        status,
        backend.timeouts.idle,
        total_deadline,
    );
    Response::from_parts(rparts, GatewayBody::Observed(Box::new(body)))
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

/// Maps an upstream client error to the gateway's error.
pub(crate) fn classify(e: &hyper_util::client::legacy::Error, url: &str) -> ProxyError {
    let timed_out = {
        let mut src = e.source();
        let mut found = false;
        while let Some(s) = src {
            if s.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            {
                found = true;
                break;
            }
            src = s.source();
        }
        found
    };
    let mut detail = String::new();
    let mut src = e.source();
    while let Some(s) = src {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        src = s.source();
    }
    if e.is_connect() {
        if timed_out {
            ProxyError::new(
                ErrorKind::ConnectTimeout,
                format!("connecting to {url} timed out"),
            )
        } else {
            ProxyError::new(
                ErrorKind::ConnectFailed,
                format!("cannot connect to {url}{detail}"),
            )
        }
    } else {
        ProxyError::new(
            ErrorKind::UpstreamFailed,
            format!("request to {url} failed{detail}"),
        )
    }
}
