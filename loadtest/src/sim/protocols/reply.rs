//! What the protocol handlers answer with: JSON or other bodies tagged with the instance,
//! and the model check.

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Response, StatusCode};
use serde_json::Value;

use crate::sim::body::SimBody;
use crate::sim::error::ApiError;
use crate::sim::response::to_json;

use super::context::Ctx;

/// The header naming the instance that served a request.
pub const INSTANCE_HEADER: HeaderName = HeaderName::from_static("x-sim-instance");

/// A JSON response with `status`, tagged with the instance.
pub fn json(ctx: &Ctx<'_>, status: StatusCode, value: &Value) -> Response<SimBody> {
    with_body(ctx, status, "application/json", to_json(value))
}

/// A response with `status`, a content type and a body, tagged with the instance.
pub fn with_body(
    ctx: &Ctx<'_>,
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<SimBody> {
    let mut response = Response::new(SimBody::full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(INSTANCE_HEADER, ctx.instance.clone());
    response
}

/// Whether `model` is served; the OpenAI-shaped 404 otherwise.
pub fn check_model(ctx: &Ctx<'_>, model: &str) -> Result<(), ApiError> {
    if ctx.models.iter().any(|m| m == model) {
        Ok(())
    } else {
        Err(ApiError::unknown_model(model))
    }
}
