//! The data path: from a client request to an upstream response passing through.
//! The steps are listed in the crate documentation (`lib.rs`).

use std::convert::Infallible;
use std::error::Error as _;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri, Version};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use rand::Rng;
use tokio::time::{timeout_at, Instant};

use crate::body::{Exchange, GatewayBody, ObservedBody};
use crate::endpoint::Failure;
use crate::error::{ErrorKind, ProxyError};
use crate::gateway::Gateway;
use crate::model_field::{extract_model, ModelFieldError};
use crate::route::{ModelRoute, RequestView, ShadowRt};
use crate::table::{BackendRt, EndpointRt};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest client-supplied request id kept; a longer one is replaced.
const MAX_REQUEST_ID: usize = 128;

/// Serves one request on the data listener. Never fails: errors become OpenAI error bodies.
pub async fn handle(
    gw: Arc<Gateway>,
    req: Request<Incoming>,
) -> Result<Response<GatewayBody>, Infallible> {
    let start = Instant::now();
    let request_id = request_id(req.headers());
    let mut resp = match proxy(&gw, req, start, &request_id).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(request_id = ?request_id, error = %e, "request failed");
            e.into_response()
        }
    };

    resp.headers_mut().insert(X_REQUEST_ID.clone(), request_id);
    Ok(resp)
}

fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(v) = headers.get(&X_REQUEST_ID) {
        if !v.is_empty() && v.len() <= MAX_REQUEST_ID && v.to_str().is_ok() {
            return v.clone();
        }
    }
    let id: u128 = rand::rng().random();
    let mut buf = [0u8; 32];
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in buf.iter_mut().enumerate() {
        *b = HEX[((id >> (4 * (31 - i))) & 0xf) as usize];
    }
    // 32 lowercase hex digits are always a valid header value.
    HeaderValue::from_bytes(&buf).unwrap_or(HeaderValue::from_static("0"))
}

async fn proxy(
    gw: &Gateway,
    req: Request<Incoming>,
    start: Instant,
    request_id: &HeaderValue,
) -> Result<Response<GatewayBody>, ProxyError> {
    let reject = |e: ProxyError| {
        gw.metrics().rejected(e.outcome());
        e
    };
    match (req.method(), req.uri().path()) {
        (&Method::POST, "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings") => {}
        (&Method::GET, "/v1/models") => {
            let mut resp = Response::new(GatewayBody::full(gw.table().models_json.clone()));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            return Ok(resp);
        }
        (_, "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings") => {
            return Err(reject(ProxyError::new(
                ErrorKind::MethodNotAllowed,
                format!("{} is not allowed here; use POST", req.method()),
            )));
        }
        (_, path) => {
            return Err(reject(ProxyError::new(
                ErrorKind::NotFound,
                format!("no route for {} {path}", req.method()),
            )));
        }
    }

    let Some(slot) = gw.try_admit() else {
        return Err(reject(ProxyError::new(
            ErrorKind::Overloaded,
            "the gateway has too many requests in flight; retry shortly",
        )));
    };
    let limits = gw.table().limits;
    let (parts, body) = req.into_parts();
    let body = read_body(body, &parts.headers, limits.max_body_bytes)
        .await
        .map_err(reject)?;
    let model = extract_model(&body).map_err(|e| {
        reject(match e {
            ModelFieldError::Malformed(why) => ProxyError::new(
                ErrorKind::MalformedBody,
                format!("request body is not a JSON object: {why}"),
            ),
            ModelFieldError::Missing => ProxyError::new(
                ErrorKind::MissingModel,
                "request body has no \"model\" string",
            ),
        })
    })?;
    let (route, budget, decision) = {
        let table = gw.table();
        let Some(route) = table.route(&model).cloned() else {
            return Err(reject(ProxyError::new(
                ErrorKind::UnknownModel,
                format!("The model `{model}` does not exist."),
            )));
        };
        let view = RequestView {
            headers: &parts.headers,
            labels: &table.labels,
        };
        let Some(decision) = route.decide(&view, &table.pin_header) else {
            return Err(reject(ProxyError::new(
                ErrorKind::NoRoute,
                format!("no route of model `{model}` matches this request"),
            )));
        };
        (route, table.retry_budget.clone(), decision)
    };
    budget.deposit();
    if let Some(shadow) = &route.rules[decision.rule].shadow {
        maybe_shadow(gw, &route, shadow, &parts, &body, request_id);
    }

    let variant = &route.variants[decision.variant];
    let backend = variant.backend.clone();
    let t = backend.timeouts;
    let total_deadline = start + t.total;
    let max_attempts = backend.retry.max_attempts as usize;
    let mut tried: Vec<usize> = Vec::new();
    let mut slot = Some(slot);
    loop {
        let Some((pos, guard)) = backend.pick(&variant.members, &tried, Instant::now()) else {
            let e = ProxyError::new(
                ErrorKind::NoHealthyEndpoint,
                format!(
                    "no endpoint of variant `{}` (backend `{}`) can take the request",
                    variant.name, backend.name
                ),
            );
            variant.unrouted.count(e.outcome());
            return Err(e);
        };
        let idx = variant.members[pos];
        let mut exchange = Exchange::new(route.clone(), decision.variant, pos, guard, start);
        exchange.hold(slot.take());
        let failed = match attempt(
            &backend,
            idx,
            &parts,
            body.clone(),
            request_id,
            exchange,
            total_deadline,
        )
        .await
        {
            Ok(mut resp) => {
                resp.headers_mut()
                    .insert(X_INFERGATE_VARIANT.clone(), variant.header.clone());
                return Ok(resp);
            }
            Err(f) => f,
        };
        let Failed {
            error,
            failure,
            mut exchange,
            passthrough,
        } = *failed;
        let retryable = error.retryable() || passthrough.is_some();
        let more_endpoints = tried.len() + 1 < variant.members.len();
        let retry = if !retryable {
            false
        } else if tried.len() + 1 >= max_attempts || !more_endpoints {
            if max_attempts > 1 {
                gw.metrics().retries(&backend.name, "attempts").inc();
            }
            false
        } else if Instant::now() >= total_deadline {
            false
        } else if budget.try_withdraw() {
            gw.metrics().retries(&backend.name, "retried").inc();
            true
        } else {
            gw.metrics().retries(&backend.name, "budget").inc();
            false
        };
        if retry {
            tracing::debug!(
                request_id = ?request_id,
                endpoint = %backend.endpoints[idx].state.url,
                error = %error,
                "retrying on another endpoint"
            );
            slot = exchange.release_slot();
            exchange.abandon(failure);
            tried.push(pos);
            continue;
        }
        if let Some(resp) = passthrough {
            // The last answer was a retryable status: the client gets it as it is.
            let mut resp = finish_response(resp, exchange, &backend);
            resp.headers_mut()
                .insert(X_INFERGATE_VARIANT.clone(), variant.header.clone());
            return Ok(resp);
        }
        exchange.finish(error.outcome());
        return Err(error);
    }
}

/// The response header that says which variant served a request.
pub static X_INFERGATE_VARIANT: HeaderName = HeaderName::from_static("x-infergate-variant");
/// Marks the copies sent as shadow traffic.
pub static X_INFERGATE_SHADOW: HeaderName = HeaderName::from_static("x-infergate-shadow");

/// Sends a copy of the request to the rule's shadow variant, for `percent` of requests and
/// while fewer than `max_concurrency` copies are in flight. The copy runs on its own task: it
/// never delays, changes or fails the client's request. Its response is read to the end,
/// measured under the variant label `shadow:<name>`, and thrown away.
fn maybe_shadow(
    gw: &Gateway,
    route: &Arc<ModelRoute>,
    shadow: &ShadowRt,
    parts: &http::request::Parts,
    body: &Bytes,
    request_id: &HeaderValue,
) {
    if rand::rng().random::<f64>() * 100.0 >= shadow.percent {
        return;
    }
    let variant = &route.variants[shadow.variant];
    let Ok(permit) = shadow.permits.clone().try_acquire_owned() else {
        gw.metrics().shadow(&route.name, &variant.name, "skipped");
        return;
    };
    gw.metrics().shadow(&route.name, &variant.name, "sent");
    let (mut copy, ()) = Request::new(()).into_parts();
    copy.method = parts.method.clone();
    copy.uri = parts.uri.clone();
    copy.headers = parts.headers.clone();
    copy.headers
        .insert(X_INFERGATE_SHADOW.clone(), HeaderValue::from_static("1"));
    let (route, body, request_id, v) = (
        route.clone(),
        body.clone(),
        request_id.clone(),
        shadow.variant,
    );
    tokio::spawn(async move {
        let _permit = permit;
        let start = Instant::now();
        let variant = &route.variants[v];
        let backend = variant.backend.clone();
        let Some((pos, guard)) = backend.pick(&variant.members, &[], start) else {
            return;
        };
        let mut exchange = Exchange::new(route.clone(), v, pos, guard, start);
        exchange.set_shadow();
        let deadline = start + backend.timeouts.total;
        match attempt(
            &backend,
            variant.members[pos],
            &copy,
            body,
            &request_id,
            exchange,
            deadline,
        )
        .await
        {
            Ok(resp) => {
                let mut b = resp.into_body();
                while let Some(f) = b.frame().await {
                    if f.is_err() {
                        break;
                    }
                }
            }
            Err(failed) => {
                let Failed {
                    error,
                    mut exchange,
                    passthrough,
                    ..
                } = *failed;
                match passthrough {
                    Some((parts, _)) => {
                        exchange.finish(crate::metrics::Outcome::for_status(parts.status))
                    }
                    None => exchange.finish(error.outcome()),
                }
            }
        }
    });
}

/// A failed attempt: the error, the endpoint failure it stands for, and, for a retryable
/// status, the upstream's response so that it can be passed through when no retry follows.
struct Failed {
    error: ProxyError,
    failure: Option<Failure>,
    exchange: Exchange,
    passthrough: Option<(http::response::Parts, Incoming)>,
}

/// One attempt on endpoint `idx`. Waits for the response head and its first body frame under
/// the first-token deadline: until then every failure is still a clean error response.
async fn attempt(
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
    let upstream_req = upstream_request(parts, body, ep, request_id);
    let fail = |exchange: Exchange, error: ProxyError| {
        let failure = error.outcome().failure();
        Err(Box::new(Failed {
            error,
            failure,
            exchange,
            passthrough: None,
        }))
    };

    let resp = match timeout_at(first_deadline, backend.client.request(upstream_req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return fail(exchange, classify(&e, &ep.state.url)),
        Err(_) => {
            let msg = format!("{} sent no response in time", ep.state.url);
            return fail(exchange, ProxyError::new(first_kind, msg));
        }
    };
    exchange.set_ttfb(sent.elapsed());
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
fn finish_response(
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

/// Reads the request body, refusing more than `limit` bytes.
async fn read_body(body: Incoming, headers: &HeaderMap, limit: u64) -> Result<Bytes, ProxyError> {
    let too_large = || {
        ProxyError::new(
            ErrorKind::BodyTooLarge,
            format!("request body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ProxyError::new(
            ErrorKind::MalformedBody,
            format!("could not read the request body: {e}"),
        )),
    }
}

fn upstream_request(
    parts: &http::request::Parts,
    body: Bytes,
    ep: &EndpointRt,
    request_id: &HeaderValue,
) -> Request<Full<Bytes>> {
    let pq = parts.uri.path_and_query();
    let path_and_query = if ep.prefix.is_empty() {
        pq.cloned()
    } else {
        let tail = pq.map_or("/", |p| p.as_str());
        format!("{}{tail}", ep.prefix).parse().ok()
    };
    let mut uri = http::uri::Parts::default();
    uri.scheme = Some(ep.scheme.clone());
    uri.authority = Some(ep.authority.clone());
    uri.path_and_query = path_and_query;
    let uri = Uri::from_parts(uri).unwrap_or_default();

    let mut req = Request::new(Full::new(body));
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_11;
    let headers = req.headers_mut();
    headers.reserve(parts.headers.len() + 1);
    let named = connection_named(&parts.headers);
    for (k, v) in &parts.headers {
        if k != header::HOST
            && k != header::CONTENT_LENGTH
            && k != X_REQUEST_ID
            && !is_hop_by_hop(k)
            && !named.contains(k)
        {
            headers.append(k, v.clone());
        }
    }
    headers.insert(X_REQUEST_ID.clone(), request_id.clone());
    req
}

/// Headers named in `Connection` (hop-by-hop by declaration); usually none, and then nothing is
/// allocated.
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect()
}

/// The fixed hop-by-hop headers (RFC 9110 7.6.1, plus `keep-alive` and `proxy-connection`).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TE
        || name == header::TRAILER
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::PROXY_AUTHENTICATE
        || name == header::PROXY_AUTHORIZATION
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// Removes the headers that describe one connection rather than the message (RFC 9110 7.6.1),
/// including those named in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass to look; removal only when there is something to remove (rare for responses).
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    for name in connection_named(headers) {
        headers.remove(name);
    }
    let hop: Vec<HeaderName> = headers
        .keys()
        .filter(|k| is_hop_by_hop(k))
        .cloned()
        .collect();
    for name in hop {
        headers.remove(name);
    }
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

/// Maps an upstream client error to the gateway's error.
fn classify(e: &hyper_util::client::legacy::Error, url: &str) -> ProxyError {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert("authorization", HeaderValue::from_static("Bearer x"));
        strip_hop_by_hop(&mut h);
        let left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["content-type", "authorization"]);
    }

    #[test]
    fn request_ids_are_kept_or_generated() {
        let mut h = HeaderMap::new();
        let generated = request_id(&h);
        assert_eq!(generated.len(), 32);
        assert_ne!(generated, request_id(&h));
        h.insert(&X_REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert(
            &X_REQUEST_ID,
            HeaderValue::from_str(&"x".repeat(200)).unwrap(),
        );
        assert_eq!(request_id(&h).len(), 32);
    }
}
