//! Request and response headers on the data path: request ids, the gateway's own headers, and
//! hop-by-hop headers (RFC 9110 7.6.1), which never cross the gateway.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Uri, Version};
use http_body_util::Full;
use rand::Rng;

use crate::backend::EndpointRt;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest client-supplied request id kept; a longer one is replaced.
const MAX_REQUEST_ID: usize = 128;

/// The response header that says which variant served a request.
pub static X_INFERGATE_VARIANT: HeaderName = HeaderName::from_static("x-infergate-variant");
/// Marks the copies sent as shadow traffic.
pub static X_INFERGATE_SHADOW: HeaderName = HeaderName::from_static("x-infergate-shadow");

/// The request's id: the client's `x-request-id` when it is usable, else a new random one.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
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

/// How the request line names its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UriForm {
    /// `/path?query`, for a connection of the endpoint's own pool.
    Origin,
    /// `http://host:port/path?query`, for hyper-util's pooled client, which picks the
    /// connection by it.
    Absolute,
}

/// The request sent to endpoint `ep`: the client's head without hop-by-hop headers, with the
/// endpoint's `Host`.
pub fn upstream_request(
    parts: &http::request::Parts,
    body: Bytes,
    ep: &EndpointRt,
    request_id: &HeaderValue,
    form: UriForm,
) -> Request<Full<Bytes>> {
    let pq = parts.uri.path_and_query();
    let path_and_query = if ep.prefix.is_empty() {
        pq.cloned()
    } else {
        let tail = pq.map_or("/", |p| p.as_str());
        format!("{}{tail}", ep.prefix).parse().ok()
    };
    let mut uri = http::uri::Parts::default();
    if form == UriForm::Absolute {
        uri.scheme = Some(ep.scheme.clone());
        uri.authority = Some(ep.authority.clone());
    }
    uri.path_and_query = path_and_query.or_else(|| Some(http::uri::PathAndQuery::from_static("/")));
    let uri = Uri::from_parts(uri).unwrap_or_default();

    let mut req = Request::new(Full::new(body));
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_11;
    let headers = req.headers_mut();
    headers.reserve(parts.headers.len() + 2);
    headers.insert(header::HOST, ep.host.clone());
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
