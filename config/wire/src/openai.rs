//! The OpenAI error body, `{"error":{"code":..,"message":..,"param":..,"type":..}}`, borrowed
//! from its caller, written as a JSON response body ([`ApiError::body`]) or as the SSE error
//! event that ends a stream that already answered 200 ([`ApiError::sse_event`]).
//!
//! The keys are written in the order above (alphabetical); clients read them by name.
//!
//! ```
//! use infergate_wire::openai::{ApiError, SERVER_ERROR};
//!
//! let e = ApiError::new("upstream_timeout", "too slow", SERVER_ERROR);
//! assert_eq!(
//!     e.body(),
//!     br#"{"error":{"code":"upstream_timeout","message":"too slow","param":null,"type":"server_error"}}"#
//! );
//! assert!(e.sse_event().starts_with(b"data: {\"error\":"));
//! assert!(e.sse_event().ends_with(b"}}\n\n"));
//! ```

use serde::Serialize;

/// `error.type` of a request the client got wrong.
pub const INVALID_REQUEST_ERROR: &str = "invalid_request_error";
/// `error.type` of a failure on the server's side (gateway or upstream).
pub const SERVER_ERROR: &str = "server_error";

/// `error.code`: a machine-readable slug (`"model_not_found"`) or a number (an HTTP status,
/// as vLLM writes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Code<'a> {
    Slug(&'a str),
    Status(u16),
}

/// The `error` object. Fields are declared in the order they are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ApiError<'a> {
    pub code: Code<'a>,
    pub message: &'a str,
    /// The request field at fault (`"model"`), or `null`.
    pub param: Option<&'a str>,
    /// `error.type`: [`INVALID_REQUEST_ERROR`], [`SERVER_ERROR`], or a server's own name.
    #[serde(rename = "type")]
    pub kind: &'a str,
}

/// `{"error": ...}`
#[derive(Serialize)]
struct Envelope<'b, 'a> {
    error: &'b ApiError<'a>,
}

impl<'a> ApiError<'a> {
    /// An error with a slug `code` and no `param`.
    pub fn new(code: &'a str, message: &'a str, kind: &'a str) -> Self {
        ApiError {
            code: Code::Slug(code),
            message,
            param: None,
            kind,
        }
    }

    /// The same error, naming the request field at fault.
    pub fn with_param(self, param: &'a str) -> Self {
        ApiError {
            param: Some(param),
            ..self
        }
    }

    /// The JSON body: `{"error":{...}}`.
    pub fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(80 + self.message.len());
        self.write(&mut out);
        out
    }

    /// The SSE error event: `data: {"error":{...}}` and the blank line that ends the event.
    pub fn sse_event(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(88 + self.message.len());
        out.extend_from_slice(b"data: ");
        self.write(&mut out);
        out.extend_from_slice(b"\n\n");
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        // Strings, a number and null into a Vec: serializing cannot fail.
        let _ = serde_json::to_writer(out, &Envelope { error: self });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn body_bytes_are_the_gateways() {
        let e = ApiError::new("model_not_found", "no model \"x\"\n", INVALID_REQUEST_ERROR)
            .with_param("model");
        assert_eq!(
            String::from_utf8(e.body()).unwrap(),
            r#"{"error":{"code":"model_not_found","message":"no model \"x\"\n","param":"model","type":"invalid_request_error"}}"#
        );
        // The same bytes as a `serde_json::Value` object writes (keys sorted), which is how the
        // gateway wrote them before.
        let value = serde_json::json!({
            "error": {"message": e.message, "type": e.kind, "param": "model", "code": "model_not_found"}
        });
        assert_eq!(e.body(), value.to_string().into_bytes());
    }

    #[test]
    fn sse_event_bytes() {
        let e = ApiError::new(
            "upstream_stalled",
            "upstream sent nothing within the idle timeout",
            SERVER_ERROR,
        );
        assert_eq!(
            e.sse_event(),
            b"data: {\"error\":{\"code\":\"upstream_stalled\",\"message\":\"upstream sent nothing within the idle timeout\",\"param\":null,\"type\":\"server_error\"}}\n\n"
        );
        let mut p = crate::sse::SseParser::new();
        let mut events = Vec::new();
        p.feed(&e.sse_event(), |ev| events.push(ev));
        assert_eq!(
            events,
            vec![crate::sse::Event::Error(
                "upstream sent nothing within the idle timeout".into()
            )]
        );
    }

    #[test]
    fn numeric_code() {
        let e = ApiError {
            code: Code::Status(404),
            message: "gone",
            param: None,
            kind: "NotFoundError",
        };
        assert_eq!(
            e.body(),
            br#"{"error":{"code":404,"message":"gone","param":null,"type":"NotFoundError"}}"#
        );
    }
}
