//! gRPC over HTTP/2, the parts a unary call needs: the 5-byte message prefix (compressed flag,
//! big-endian length), and the status in `grpc-status` / `grpc-message` (percent-encoded).

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};

use crate::proto::MAX_MESSAGE;

pub const CONTENT_TYPE: &str = "application/grpc";

/// gRPC status codes used by name here.
pub mod code {
    pub const OK: u32 = 0;
    pub const INVALID_ARGUMENT: u32 = 3;
    pub const UNIMPLEMENTED: u32 = 12;
    pub const INTERNAL: u32 = 13;
    pub const UNAVAILABLE: u32 = 14;
}

/// The name of a gRPC status code.
pub fn code_name(code: u32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "unknown code",
    }
}

/// One message with its prefix.
pub fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(message.len() as u32);
    out.put_slice(message);
    out.freeze()
}

/// The one message of a unary call's body.
pub fn unframe(body: &[u8]) -> Result<&[u8], String> {
    let Some((prefix, rest)) = body.split_first_chunk::<5>() else {
        return Err(format!(
            "the body holds {} bytes, less than a message prefix",
            body.len()
        ));
    };
    if prefix[0] != 0 {
        return Err(format!(
            "the message is compressed (flag {}), which was not asked for",
            prefix[0]
        ));
    }
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    if len > MAX_MESSAGE {
        return Err(format!(
            "a message of {len} bytes is over the limit of {MAX_MESSAGE} bytes"
        ));
    }
    if rest.len() != len {
        return Err(format!(
            "the prefix says {len} bytes, the body holds {} after it",
            rest.len()
        ));
    }
    Ok(rest)
}

/// A call's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: u32,
    pub message: String,
}

/// The status in `headers` (trailers, or the headers of a trailers-only response): `None`
/// when there is no `grpc-status`; an error when it is not a number.
pub fn status(headers: &HeaderMap) -> Option<Result<Status, String>> {
    let raw = headers.get("grpc-status")?;
    let code = match raw.to_str().ok().and_then(|s| s.trim().parse::<u32>().ok()) {
        Some(c) => c,
        None => return Some(Err(format!("grpc-status {raw:?} is not a number"))),
    };
    let message = headers
        .get("grpc-message")
        .map(|m| percent_decode(m.as_bytes()))
        .unwrap_or_default();
    Some(Ok(Status { code, message }))
}

/// Headers (or trailers) that carry `status`.
pub fn status_headers(status: &Status) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("grpc-status", HeaderValue::from(status.code));
    if !status.message.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&percent_encode(&status.message)) {
            h.insert("grpc-message", v);
        }
    }
    h
}

/// `grpc-message` encoding: bytes outside printable ASCII, and `%`, as `%XX`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX`; a `%` not followed by two hex digits stays as it is.
pub fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = raw
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (raw[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_frames_are_refused() {
        let f = frame(b"abc");
        assert_eq!(&f[..], &[0, 0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(unframe(&f).unwrap(), b"abc");
        assert_eq!(unframe(&frame(b"")).unwrap(), b"");
        assert!(unframe(&[])
            .unwrap_err()
            .contains("less than a message prefix"));
        assert!(unframe(&[0, 0, 0]).is_err());
        assert!(unframe(&[1, 0, 0, 0, 0])
            .unwrap_err()
            .contains("compressed"));
        assert!(unframe(&[0, 0, 0, 0, 4, 1])
            .unwrap_err()
            .contains("says 4 bytes"));
        assert!(unframe(&[0, 0, 0, 0, 0, 1]).is_err(), "trailing bytes");
        assert!(unframe(&[0, 0xff, 0xff, 0xff, 0xff])
            .unwrap_err()
            .contains("over the limit"));
    }

    #[test]
    fn status_reads_code_and_decoded_message() {
        let s = Status {
            code: 14,
            message: "kubelet is 100% gone: ünïcode\n".into(),
        };
        let h = status_headers(&s);
        assert_eq!(
            h.get("grpc-message").unwrap(),
            "kubelet is 100%25 gone: %C3%BCn%C3%AFcode%0A"
        );
        assert_eq!(status(&h).unwrap().unwrap(), s);
        assert!(status(&HeaderMap::new()).is_none());
        let mut bad = HeaderMap::new();
        bad.insert("grpc-status", HeaderValue::from_static("fourteen"));
        assert!(status(&bad).unwrap().is_err());
        assert_eq!(percent_decode(b"100%"), "100%");
        assert_eq!(percent_decode(b"%zz%4"), "%zz%4");
        assert_eq!(code_name(14), "UNAVAILABLE");
    }
}
