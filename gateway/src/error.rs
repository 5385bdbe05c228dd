//! One error type for everything that can go wrong on the request path, mapped in one place to
//! an HTTP status, an OpenAI error body and a metric outcome; and [`echo`], the one way client
//! input is quoted in an error message or a log line.

use std::borrow::Cow;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use infergate_wire::openai::{self, ApiError};

use crate::body::GatewayBody;
use crate::metrics::Outcome;

/// Where an error came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Client,
    Upstream,
    Gateway,
}

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    MethodNotAllowed,
    BodyTooLarge,
    /// The body did not arrive whole within `limits.body_read_timeout` of the head.
    BodyTimeout,
    MalformedBody,
    MissingModel,
    /// More than one top-level `model` key.
    DuplicateModel,
    UnknownModel,
    NoRoute,
    NoHealthyEndpoint,
    Overloaded,
    ConnectFailed,
    UpstreamFailed,
    ConnectTimeout,
    FirstTokenTimeout,
    TotalTimeout,
}

#[derive(Debug)]
pub struct ProxyError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ProxyError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProxyError {
            kind,
            message: message.into(),
        }
    }

    pub fn source(&self) -> Source {
        use ErrorKind::*;
        match self.kind {
            NotFound | MethodNotAllowed | BodyTooLarge | MalformedBody | MissingModel
            | DuplicateModel | UnknownModel | NoRoute => Source::Client,
            BodyTimeout => Source::Client,
            NoHealthyEndpoint | Overloaded => Source::Gateway,
            ConnectFailed | UpstreamFailed | ConnectTimeout | FirstTokenTimeout | TotalTimeout => {
                Source::Upstream
            }
        }
    }

    /// Whether another endpoint may be tried (only while nothing was sent to the client).
    pub fn retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::ConnectFailed
                | ErrorKind::ConnectTimeout
                | ErrorKind::FirstTokenTimeout
                | ErrorKind::UpstreamFailed
        )
    }

    pub fn status(&self) -> StatusCode {
        use ErrorKind::*;
        match self.kind {
            NotFound | UnknownModel | NoRoute => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            MalformedBody | MissingModel | DuplicateModel => StatusCode::BAD_REQUEST,
            NoHealthyEndpoint | Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ConnectFailed | UpstreamFailed => StatusCode::BAD_GATEWAY,
            ConnectTimeout | FirstTokenTimeout | TotalTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// OpenAI's `error.type`.
    pub fn error_type(&self) -> &'static str {
        match self.source() {
            Source::Client => openai::INVALID_REQUEST_ERROR,
            Source::Gateway | Source::Upstream => openai::SERVER_ERROR,
        }
    }

    /// OpenAI's `error.code`: a stable machine-readable slug.
    pub fn code(&self) -> &'static str {
        use ErrorKind::*;
        match self.kind {
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            BodyTooLarge => "request_too_large",
            BodyTimeout => "request_body_timeout",
            MalformedBody => "invalid_json",
            MissingModel => "missing_model",
            DuplicateModel => "duplicate_model",
            UnknownModel => "model_not_found",
            NoRoute => "no_matching_route",
            NoHealthyEndpoint => "no_healthy_endpoint",
            Overloaded => "overloaded",
            ConnectFailed => "upstream_connect_error",
            UpstreamFailed => "upstream_error",
            ConnectTimeout => "upstream_connect_timeout",
            FirstTokenTimeout => "upstream_first_token_timeout",
            TotalTimeout => "upstream_timeout",
        }
    }

    pub fn outcome(&self) -> Outcome {
        use ErrorKind::*;
        match self.kind {
            NotFound | MethodNotAllowed | MalformedBody | MissingModel | DuplicateModel => {
                Outcome::BadRequest
            }
            // A client too slow to send its body: the client's fault, like a malformed one.
            BodyTimeout => Outcome::BadRequest,
            BodyTooLarge => Outcome::BodyTooLarge,
            UnknownModel => Outcome::UnknownModel,
            NoRoute => Outcome::NoRoute,
            NoHealthyEndpoint => Outcome::NoEndpoint,
            Overloaded => Outcome::Overloaded,
            ConnectFailed => Outcome::ConnectError,
            UpstreamFailed => Outcome::UpstreamError,
            ConnectTimeout => Outcome::TimeoutConnect,
            FirstTokenTimeout => Outcome::TimeoutFirstToken,
            TotalTimeout => Outcome::TimeoutTotal,
        }
    }

    /// The OpenAI error body, `{"error":{"code":..,"message":..,"param":..,"type":..}}`.
    pub fn body(&self) -> Bytes {
        let error = ApiError::new(self.code(), &self.message, self.error_type());
        let error = match self.kind {
            ErrorKind::MissingModel | ErrorKind::DuplicateModel | ErrorKind::UnknownModel => {
                error.with_param("model")
            }
            _ => error,
        };
        Bytes::from(error.body())
    }

    pub fn into_response(self) -> Response<GatewayBody> {
        let mut resp = Response::new(GatewayBody::full(self.body()));
        *resp.status_mut() = self.status();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.kind == ErrorKind::Overloaded {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.kind == ErrorKind::MethodNotAllowed {
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        resp
    }
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.message)
    }
}

impl std::error::Error for ProxyError {}

/// The most characters of one piece of client input (a model name, a path, a parser's message
/// about the body) that [`echo`] keeps.
pub const MAX_ECHO_CHARS: usize = 256;

/// `input` as an error message or a log line may quote it: whole up to [`MAX_ECHO_CHARS`]
/// characters, else its first [`MAX_ECHO_CHARS`] characters followed by `…(cut, N bytes)`, N
/// being the length of the whole input.
pub fn echo(input: &str) -> Cow<'_, str> {
    match input.char_indices().nth(MAX_ECHO_CHARS) {
        None => Cow::Borrowed(input),
        Some((end, _)) => Cow::Owned(format!("{}…(cut, {} bytes)", &input[..end], input.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_keeps_short_input_and_cuts_long_input_on_a_char_boundary() {
        assert!(matches!(echo("llama"), Cow::Borrowed("llama")));
        let exact = "é".repeat(MAX_ECHO_CHARS);
        assert_eq!(echo(&exact), exact);
        let long = "é".repeat(100_000);
        let cut = echo(&long);
        assert_eq!(
            cut,
            format!("{}…(cut, 200000 bytes)", "é".repeat(MAX_ECHO_CHARS))
        );
    }

    #[test]
    fn duplicate_model_is_a_bad_request_about_model() {
        let e = ProxyError::new(ErrorKind::DuplicateModel, "x");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(e.code(), "duplicate_model");
        assert_eq!(e.error_type(), openai::INVALID_REQUEST_ERROR);
        assert_eq!(e.outcome(), Outcome::BadRequest);
        let body: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(body["error"]["param"], "model");
    }
}
