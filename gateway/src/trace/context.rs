//! W3C Trace Context (`traceparent`, `tracestate`): read from the client, written upstream.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use rand::Rng;

pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The trace a request belongs to, as its client said or as the gateway started it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// The client's span: the parent of the gateway's span. `None` for a new trace.
    pub parent: Option<[u8; 8]>,
    /// The client's sampling decision (the `sampled` flag), when it sent one.
    pub parent_sampled: Option<bool>,
    /// The client's `tracestate`, passed on unchanged.
    pub state: Option<HeaderValue>,
}

impl TraceContext {
    /// The client's context, or a new trace when it sent none (or a malformed one, which the
    /// W3C spec says to ignore).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        if let Some((trace_id, parent, sampled)) = headers
            .get(&TRACEPARENT)
            .and_then(|v| parse_traceparent(v.as_bytes()))
        {
            let state = headers.get(&TRACESTATE).filter(|v| v.len() <= 512).cloned();
            return TraceContext {
                trace_id,
                parent: Some(parent),
                parent_sampled: Some(sampled),
                state,
            };
        }
        TraceContext {
            trace_id: new_trace_id(),
            parent: None,
            parent_sampled: None,
            state: None,
        }
    }
}

/// Parses `00-<32 hex>-<16 hex>-<2 hex>`; a later version may append fields after a `-`.
pub fn parse_traceparent(v: &[u8]) -> Option<([u8; 16], [u8; 8], bool)> {
    if v.len() < 55 {
        return None;
    }
    let version = hex_byte(&v[0..2])?;
    if version == 0xff || (version == 0 && v.len() != 55) || (v.len() > 55 && v[55] != b'-') {
        return None;
    }
    if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let mut trace_id = [0u8; 16];
    for (i, b) in trace_id.iter_mut().enumerate() {
        *b = hex_byte(&v[3 + 2 * i..5 + 2 * i])?;
    }
    let mut span_id = [0u8; 8];
    for (i, b) in span_id.iter_mut().enumerate() {
        *b = hex_byte(&v[36 + 2 * i..38 + 2 * i])?;
    }
    let flags = hex_byte(&v[53..55])?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some((trace_id, span_id, flags & 1 == 1))
}

/// `00-<trace>-<span>-<flags>`
pub fn traceparent(trace_id: &[u8; 16], span_id: &[u8; 8], sampled: bool) -> HeaderValue {
    let mut buf = [0u8; 55];
    buf[..3].copy_from_slice(b"00-");
    write_hex(&mut buf[3..35], trace_id);
    buf[35] = b'-';
    write_hex(&mut buf[36..52], span_id);
    buf[52] = b'-';
    buf[53..].copy_from_slice(if sampled { b"01" } else { b"00" });
    // Lowercase hex and dashes are always a valid header value.
    HeaderValue::from_bytes(&buf).unwrap_or(HeaderValue::from_static(""))
}

/// Lowercase hex of `bytes`, for logs and tests.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    write_hex(&mut out, bytes);
    String::from_utf8(out).unwrap_or_default()
}

pub fn new_trace_id() -> [u8; 16] {
    loop {
        let id: [u8; 16] = rand::rng().random();
        if id != [0; 16] {
            return id;
        }
    }
}

pub fn new_span_id() -> [u8; 8] {
    loop {
        let id: [u8; 8] = rand::rng().random();
        if id != [0; 8] {
            return id;
        }
    }
}

fn write_hex(out: &mut [u8], bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
}

fn hex_byte(s: &[u8]) -> Option<u8> {
    let d = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(d(s[0])? << 4 | d(s[1])?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_traceparent_round_trips() {
        let (t, s, sampled) = parse_traceparent(TP.as_bytes()).unwrap();
        assert_eq!(hex(&t), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&s), "00f067aa0ba902b7");
        assert!(sampled);
        assert_eq!(traceparent(&t, &s, true), TP);
        assert_eq!(
            traceparent(&t, &s, false),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
        );
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad.as_bytes()).is_none(), "{bad}");
        }
        // A later version may carry more fields.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra";
        assert!(!parse_traceparent(later.as_bytes()).unwrap().2);
    }

    #[test]
    fn headers_give_the_clients_context_or_a_new_trace() {
        let mut h = HeaderMap::new();
        let fresh = TraceContext::from_headers(&h);
        assert!(fresh.parent.is_none());
        assert_ne!(fresh.trace_id, [0; 16]);
        h.insert(&TRACEPARENT, HeaderValue::from_static(TP));
        h.insert(&TRACESTATE, HeaderValue::from_static("vendor=1"));
        let c = TraceContext::from_headers(&h);
        assert_eq!(hex(&c.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(c.parent.map(|p| hex(&p)).unwrap(), "00f067aa0ba902b7");
        assert_eq!(c.parent_sampled, Some(true));
        assert_eq!(c.state.unwrap(), "vendor=1");
    }
}
