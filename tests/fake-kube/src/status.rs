//! Response bodies, and errors in the Kubernetes `Status` shape.

use std::convert::Infallible;

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use serde_json::{json, Value};

/// The body of every response: a whole JSON document or a watch stream.
pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A `Status` object with `status: Failure`.
pub(crate) fn failure(code: StatusCode, reason: &str, message: &str, details: Value) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code.as_u16(),
    })
}

/// An error response: the status code with a `Status` body.
pub(crate) fn error(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    json_response(code, &failure(code, reason, message, json!({})))
}

/// 410 Gone with reason `Expired`, as for a list or watch from a compacted resourceVersion.
pub(crate) fn expired(message: &str) -> Value {
    failure(StatusCode::GONE, "Expired", message, json!({}))
}

/// 404 for a path the fake does not serve.
pub(crate) fn not_served() -> Response<Body> {
    error(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource",
    )
}

/// A request the fake refuses: the HTTP status, the `Status` reason and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub code: StatusCode,
    pub reason: &'static str,
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(
        code: StatusCode,
        reason: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// 422, reason `Invalid`: the object fails validation.
    pub(crate) fn invalid(kind: crate::kind::Kind, message: &str) -> ApiError {
        let msg = format!("{} is invalid: {message}", kind.kind());
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", msg)
    }

    /// 410 Gone, reason `Expired`.
    pub(crate) fn expired(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::GONE, "Expired", message)
    }

    pub(crate) fn response(&self) -> Response<Body> {
        error(self.code, self.reason, &self.message)
    }
}
