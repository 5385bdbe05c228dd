//! `GET /ws?clientId=..`: the upgrade to a WebSocket that carries a client's messages.

use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::sim::body::SimBody;
use crate::sim::ws::{accept_key, server};

use super::super::comfy_state::uuid;
use super::super::context::Ctx;
use super::super::reply::with_body;
use super::query;

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Answers 101 and serves the WebSocket once hyper hands the connection over; 400 when the
/// request is not a WebSocket handshake (RFC 6455, version 13). The socket gets a `status`
/// message at once, then the messages of the prompts submitted with its `clientId` (a
/// random one when absent, as ComfyUI does).
pub fn upgrade(ctx: &Ctx<'_>, req: Request<Incoming>) -> Response<SimBody> {
    let headers = req.headers();
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    let upgrade_ok = has_token(headers, header::UPGRADE, "websocket")
        && has_token(headers, header::CONNECTION, "upgrade");
    let Some(key) = key.filter(|_| version_ok && upgrade_ok) else {
        return with_body(
            ctx,
            StatusCode::BAD_REQUEST,
            "text/plain; charset=utf-8",
            bytes::Bytes::from(
                "Expected a WebSocket handshake: Upgrade: websocket, Connection: Upgrade, \
                 Sec-WebSocket-Key and Sec-WebSocket-Version: 13",
            ),
        );
    };
    let client_id = req
        .uri()
        .query()
        .and_then(|q| query::param(q, "clientId"))
        .filter(|id| !id.is_empty())
        .unwrap_or_else(uuid);
    let outgoing = ctx.comfy.connect(&client_id);
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => server::serve(TokioIo::new(upgraded), outgoing).await,
            Err(err) => tracing::debug!(%err, "WebSocket upgrade failed"),
        }
    });
    let mut response = with_body(
        ctx,
        StatusCode::SWITCHING_PROTOCOLS,
        "text/plain",
        bytes::Bytes::new(),
    );
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept_key(&key)) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}
