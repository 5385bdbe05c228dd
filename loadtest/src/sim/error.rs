//! Errors answered to clients, in vLLM's (OpenAI's) JSON shape.

use bytes::Bytes;
use http::{Method, StatusCode};
use infergate_wire::openai::{self, Code};

/// A request the simulator refuses. Rendered as
/// `{"error":{"code":<status>,"message":..,"param":..,"type":..}}` ([`openai::ApiError`]).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    param: Option<&'static str>,
}

impl ApiError {
    /// 400: the body is not valid JSON, misses a field, or holds an invalid value.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            param: None,
        }
    }

    /// 404 for a model this simulator does not serve, worded as vLLM words it.
    pub fn unknown_model(model: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!("The model `{model}` does not exist."),
            param: Some("model"),
        }
    }

    /// 404 for a method and path the simulator has no route for.
    pub fn unknown_route(method: &Method, path: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!("No route for {method} {path}."),
            param: None,
        }
    }

    /// 413: the request body is larger than the simulator accepts.
    pub fn too_large(limit: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("The request body is larger than {limit} bytes."),
            param: None,
        }
    }

    /// 429: the waiting queue is full.
    pub fn overloaded(max_waiting: usize) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!(
                "The server is overloaded: {max_waiting} requests are already waiting."
            ),
            param: None,
        }
    }

    /// 503 while the simulated server is still starting.
    pub fn starting_up() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "The model server is starting up.".to_owned(),
            param: None,
        }
    }

    /// The `status=CODE` fault: `code` (500 if it is not a valid status).
    pub fn fault(code: u16) -> Self {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self {
            status,
            message: format!("Simulated fault: status {}.", status.as_u16()),
            param: None,
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// vLLM's error `type` for the status.
    fn kind(&self) -> &'static str {
        match self.status {
            StatusCode::UNAUTHORIZED => "AuthenticationError",
            StatusCode::FORBIDDEN => "PermissionDeniedError",
            StatusCode::NOT_FOUND => "NotFoundError",
            StatusCode::PAYLOAD_TOO_LARGE => "PayloadTooLargeError",
            StatusCode::UNPROCESSABLE_ENTITY => "UnprocessableEntityError",
            StatusCode::TOO_MANY_REQUESTS => "RateLimitError",
            StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailableError",
            status if status.is_server_error() => "InternalServerError",
            _ => "BadRequestError",
        }
    }

    /// The JSON error body, `{"error":{...}}` with the HTTP status as `code`, as vLLM sends it.
    pub fn body(&self) -> Bytes {
        Bytes::from(self.wire().body())
    }

    fn wire(&self) -> openai::ApiError<'_> {
        openai::ApiError {
            code: Code::Status(self.status.as_u16()),
            message: &self.message,
            param: self.param,
            kind: self.kind(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_model_matches_vllm_shape() {
        let body = ApiError::unknown_model("nope").body();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"message": "The model `nope` does not exist.", "type": "NotFoundError", "param": "model", "code": 404}})
        );
    }

    #[test]
    fn fault_statuses_get_openai_error_types() {
        for (code, kind) in [
            (429, "RateLimitError"),
            (500, "InternalServerError"),
            (502, "InternalServerError"),
            (503, "ServiceUnavailableError"),
            (418, "BadRequestError"),
        ] {
            let err = ApiError::fault(code);
            assert_eq!(err.status().as_u16(), code);
            assert_eq!(err.kind(), kind);
        }
    }
}
