//! One attempt on one endpoint, up to the commit point (the response head and its first body
//! frame under the first-token deadline), and the response passed through after it.

use std::future::Future as _;
use std::pin::{pin, Pin};
use std::task::Poll;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::{sleep_until, Instant, Sleep};

use crate::backend::BackendRt;
use crate::body::{Exchange, GatewayBody, ObservedBody};
use crate::endpoint::Failure;
use crate::error::{ErrorKind, ProxyError};
use crate::headers::{strip_hop_by_hop, upstream_request, UriForm};
use crate::pool::SendError;

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
    let mut upstream_req = upstream_request(parts, body, ep, request_id, UriForm::Origin);
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

    // One timer for the attempt: the first-token deadline for the head and the first frame,
    // then the body's idle and total deadlines (`ObservedBody`).
    let mut timer = Box::pin(sleep_until(first_deadline));
    // The request is handed to the connection now: the end of the overhead's first part.
    exchange.hooks().dispatched(Instant::now());
    let send = pin!(ep.pool.send(upstream_req));
    let (resp, conn) = match before(timer.as_mut(), send).await {
        Some(Ok(r)) => r,
        Some(Err(e)) => return fail(exchange, send_error(&e, &ep.state.url)),
        None => {
            let msg = format!("{} sent no response in time", ep.state.url);
            return fail(exchange, ProxyError::new(first_kind, msg));
        }
    };
    exchange.set_ttfb(sent.elapsed());
    exchange.keep_conn(conn);
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
        match before(timer.as_mut(), pin!(incoming.frame())).await {
            Some(Some(Ok(f))) => Some(f),
            Some(None) => None,
            Some(Some(Err(e))) => {
                let msg = format!("{} failed before the first byte: {e}", ep.state.url);
                return fail(exchange, ProxyError::new(ErrorKind::UpstreamFailed, msg));
            }
            None => {
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
        timer,
    ))
}

/// `fut`'s output, or `None` when `timer` fires first. `fut` is polled first, so a result that
/// is ready wins over a deadline that passed. Takes `fut` pinned where it is, so that it is not
/// held twice in the caller's future.
fn before<'a, F: std::future::Future>(
    mut timer: Pin<&'a mut Sleep>,
    mut fut: Pin<&'a mut F>,
) -> impl std::future::Future<Output = Option<F::Output>> + 'a {
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
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
        deadline,
        Box::pin(sleep_until(deadline)),
    )
}

fn respond(
    mut rparts: http::response::Parts,
    incoming: Incoming,
    first: Option<http_body::Frame<Bytes>>,
    exchange: Exchange,
    backend: &BackendRt,
    total_deadline: Instant,
    timer: Pin<Box<Sleep>>,
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
        timer,
    );
    Response::from_parts(rparts, GatewayBody::Observed(Box::new(body)))
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

/// The gateway's error for a request the endpoint's pool could not get answered.
fn send_error(e: &SendError, url: &str) -> ProxyError {
    match e {
        SendError::Connect(e) => classify(true, Some(&**e), url),
        SendError::Request(e) => classify(false, Some(e), url),
    }
}

/// Maps an upstream error to the gateway's: `first` is the first error of the chain to report,
/// `connect` whether no connection was made.
pub(crate) fn classify(
    connect: bool,
    first: Option<&(dyn std::error::Error + 'static)>,
    url: &str,
) -> ProxyError {
    let mut detail = String::new();
    let mut timed_out = false;
    let mut src = first;
    while let Some(s) = src {
        timed_out |= s
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        src = s.source();
    }
    match (connect, timed_out) {
        (true, true) => ProxyError::new(
            ErrorKind::ConnectTimeout,
            format!("connecting to {url} timed out"),
        ),
        (true, false) => ProxyError::new(
            ErrorKind::ConnectFailed,
            format!("cannot connect to {url}{detail}"),
        ),
        (false, _) => ProxyError::new(
            ErrorKind::UpstreamFailed,
            format!("request to {url} failed{detail}"),
        ),
    }
}
