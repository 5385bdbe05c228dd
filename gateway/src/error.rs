//! One error type for everything that can go wrong on the request path, mapped in one place to
//! an HTTP status, an OpenAI error body and a metric outcome.

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
    MalformedBody,
    MissingModel,
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
            | UnknownModel | NoRoute => Source::Client,
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
            MalformedBody | MissingModel => StatusCode::BAD_REQUEST,
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
            MalformedBody => "invalid_json",
            MissingModel => "missing_model",
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
            NotFound | MethodNotAllowed | MalformedBody | MissingModel => Outcome::BadRequest,
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
            ErrorKind::MissingModel | ErrorKind::UnknownModel => error.with_param("model"),
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
