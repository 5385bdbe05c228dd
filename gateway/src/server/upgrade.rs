//! WebSocket pass-through (HTTP/1.1 `Upgrade`): the upgrade request goes to the chosen endpoint
//! like any request (connect timeout, retries on another endpoint before an answer); when the
//! endpoint answers `101 Switching Protocols`, the client gets that answer and both connections
//! are handed to a tunnel that copies bytes both ways, unread.
//!
//! The tunnel keeps the request's exchange (the endpoint's in-flight count and the listener's
//! place) and the client connection's [`ConnHold`] until it ends. It ends when either side
//! closes, when nothing passed either way for the backend's `timeouts.idle`, or at its
//! `timeouts.total` deadline; the request is then recorded with its duration and outcome
//! (`success` after a clean close, `timeout_idle` or `timeout_total`, `upstream_error` on a
//! read or write error), and the access log gets status 101 and the bytes sent to the client.
//! An answer other than 101 is passed through as a normal response.

use std::error::Error as _;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{sleep_until, timeout_at, Instant};

use super::ConnHold;
use crate::attempt::{classify, finish_response, Failed};
use crate::backend::BackendRt;
use crate::body::{Exchange, GatewayBody};
use crate::error::{ErrorKind, ProxyError};
use crate::headers::{upstream_request, UriForm};
use crate::metrics::Outcome;

/// Size of each direction's copy buffer.
const BUF: usize = 16 * 1024;

/// What the tunnel holds of the client side: its pending upgrade and its connection.
pub struct ClientSide {
    pub upgrade: Option<OnUpgrade>,
    pub hold: Option<ConnHold>,
}

/// One upgrade attempt on endpoint `idx`.
pub async fn attempt(
    backend: &BackendRt,
    idx: usize,
    parts: &http::request::Parts,
    request_id: &HeaderValue,
    mut exchange: Exchange,
    total_deadline: Instant,
    client: &mut ClientSide,
) -> Result<Response<GatewayBody>, Box<Failed>> {
    let ep = &backend.endpoints[idx];
    let t = backend.timeouts;
    let sent = Instant::now();
    let first_deadline = (sent + t.first_token).min(total_deadline);
    let mut req = upstream_request(parts, Bytes::new(), ep, request_id, UriForm::Absolute);
    // The two headers the upgrade needs are hop-by-hop: set again for the endpoint's hop.
    req.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Some(u) = parts.headers.get(header::UPGRADE) {
        req.headers_mut().insert(header::UPGRADE, u.clone());
    }
    // The trace context goes upstream, as for every attempt.
    if let Some(o) = exchange.hooks().obs.as_mut() {
        o.attempt_started(&ep.state.url, req.headers_mut());
    }
    exchange.hooks().dispatched(Instant::now());
    let fail = |exchange: Exchange, error: ProxyError| {
        Err(Box::new(Failed {
            failure: error.outcome().failure(),
            error,
            exchange,
            passthrough: None,
        }))
    };
    let mut resp = match timeout_at(first_deadline, backend.client.request(req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let error = classify(e.is_connect(), e.source(), &ep.state.url);
            return fail(exchange, error);
        }
        Err(_) => {
            let msg = format!("{} did not answer the upgrade in time", ep.state.url);
            return fail(exchange, ProxyError::new(ErrorKind::FirstTokenTimeout, msg));
        }
    };
    exchange.set_ttfb(sent.elapsed());
    if let Some(o) = exchange.hooks().obs.as_mut() {
        o.attempt_status(resp.status().as_u16());
    }
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(finish_response(resp.into_parts(), exchange, backend));
    }
    let Some(client_upgrade) = client.upgrade.take() else {
        let msg = "the client connection cannot be upgraded (HTTP/2?)";
        return fail(exchange, ProxyError::new(ErrorKind::UpstreamFailed, msg));
    };
    let upstream_upgrade = hyper::upgrade::on(&mut resp);
    let mut answer = Response::new(GatewayBody::full(Bytes::new()));
    *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *answer.headers_mut() = resp.headers().clone();
    let idle = t.idle;
    let hold = client.hold.take();
    exchange.hooks().status = Some(StatusCode::SWITCHING_PROTOCOLS);
    tokio::spawn(async move {
        let _hold = hold;
        let outcome = match tokio::try_join!(client_upgrade, upstream_upgrade) {
            Ok((c, u)) => {
                let (outcome, to_client) = tunnel(c, u, idle, total_deadline).await;
                exchange.hooks().bytes_out += to_client;
                outcome
            }
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket upgrade did not complete");
                Outcome::UpstreamError
            }
        };
        exchange.finish(outcome);
    });
    Ok(answer)
}

/// Copies bytes both ways until either side closes, the idle timeout (nothing read, or a write
/// that does not complete, for `idle`) or the total deadline. Returns how it ended and the bytes
/// passed to the client.
async fn tunnel(
    client: Upgraded,
    upstream: Upgraded,
    idle: std::time::Duration,
    total_deadline: Instant,
) -> (Outcome, u64) {
    let (mut cr, mut cw) = tokio::io::split(TokioIo::new(client));
    let (mut ur, mut uw) = tokio::io::split(TokioIo::new(upstream));
    let mut to_up = vec![0u8; BUF];
    let mut to_client = vec![0u8; BUF];
    let timed_out = || {
        if Instant::now() >= total_deadline {
            Outcome::TimeoutTotal
        } else {
            Outcome::TimeoutIdle
        }
    };
    let mut last = Instant::now();
    let mut to_client_bytes = 0u64;
    loop {
        let wake = (last + idle).min(total_deadline);
        let outcome = tokio::select! {
            r = cr.read(&mut to_up) => match r {
                Ok(0) => Some(Outcome::Success),
                Ok(n) => {
                    let until = (Instant::now() + idle).min(total_deadline);
                    match timeout_at(until, uw.write_all(&to_up[..n])).await {
                        Ok(Ok(())) => None,
                        Ok(Err(_)) => Some(Outcome::UpstreamError),
                        Err(_) => Some(timed_out()),
                    }
                }
                Err(_) => Some(Outcome::ClientCancelled),
            },
            r = ur.read(&mut to_client) => match r {
                Ok(0) => Some(Outcome::Success),
                Ok(n) => {
                    let until = (Instant::now() + idle).min(total_deadline);
                    match timeout_at(until, cw.write_all(&to_client[..n])).await {
                        Ok(Ok(())) => {
                            to_client_bytes += n as u64;
                            None
                        }
                        Ok(Err(_)) => Some(Outcome::ClientCancelled),
                        Err(_) => Some(timed_out()),
                    }
                }
                Err(_) => Some(Outcome::UpstreamError),
            },
            _ = sleep_until(wake) => Some(timed_out()),
        };
        if let Some(o) = outcome {
            // Best effort, bounded: a peer that reads nothing does not hold the tunnel.
            let until = Instant::now() + std::time::Duration::from_secs(1);
            let _ = timeout_at(until, uw.shutdown()).await;
            let _ = timeout_at(until, cw.shutdown()).await;
            return (o, to_client_bytes);
        }
        last = Instant::now();
    }
}
