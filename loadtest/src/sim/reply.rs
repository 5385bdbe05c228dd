//! The responses the simulator answers with: JSON, an event stream, or an [`ApiError`].

use bytes::Bytes;
use http::{header, HeaderValue, Response};

use super::body::SimBody;
use super::error::ApiError;

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream; charset=utf-8");

/// A 200 response with an event-stream body.
pub fn event_stream(body: SimBody) -> Response<SimBody> {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, EVENT_STREAM);
    response
}

/// A 200 response with a JSON body.
pub fn json(body: Bytes) -> Response<SimBody> {
    let mut response = Response::new(SimBody::full(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, APPLICATION_JSON);
    response
}

/// The error's status, `content-type: application/json` and its JSON body.
pub fn error(err: &ApiError) -> Response<SimBody> {
    let mut response = json(err.body());
    *response.status_mut() = err.status();
    response
}
