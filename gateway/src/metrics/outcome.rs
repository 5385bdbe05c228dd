//! How a request ended: the `outcome` label.

/// How a request ended; the `outcome` label of `infergate_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream answered 2xx and the whole response reached the client.
    Success,
    /// The upstream answered 4xx (passed through).
    Upstream4xx,
    /// The upstream answered 5xx (passed through).
    Upstream5xx,
    /// The gateway could not connect to the endpoint.
    ConnectError,
    /// The upstream failed after connecting (reset, protocol error, cut stream).
    UpstreamError,
    TimeoutConnect,
    TimeoutFirstToken,
    TimeoutIdle,
    TimeoutTotal,
    /// The client went away before the response ended.
    ClientCancelled,
    /// Malformed request, missing or duplicate model, unknown path or method, a body that did
    /// not arrive within `limits.body_read_timeout`.
    BadRequest,
    BodyTooLarge,
    UnknownModel,
    /// No endpoint of the model's backend could take the request.
    NoEndpoint,
    /// The model exists but none of its routes matched the request.
    NoRoute,
    /// The listener's in-flight or connection limit was reached (503 with `Retry-After`).
    Overloaded,
}

impl Outcome {
    pub const ALL: [Outcome; 16] = [
        Outcome::Success,
        Outcome::Upstream4xx,
        Outcome::Upstream5xx,
        Outcome::ConnectError,
        Outcome::UpstreamError,
        Outcome::TimeoutConnect,
        Outcome::TimeoutFirstToken,
        Outcome::TimeoutIdle,
        Outcome::TimeoutTotal,
        Outcome::ClientCancelled,
        Outcome::BadRequest,
        Outcome::BodyTooLarge,
        Outcome::UnknownModel,
        Outcome::NoEndpoint,
        Outcome::NoRoute,
        Outcome::Overloaded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Upstream4xx => "upstream_4xx",
            Outcome::Upstream5xx => "upstream_5xx",
            Outcome::ConnectError => "connect_error",
            Outcome::UpstreamError => "upstream_error",
            Outcome::TimeoutConnect => "timeout_connect",
            Outcome::TimeoutFirstToken => "timeout_first_token",
            Outcome::TimeoutIdle => "timeout_idle",
            Outcome::TimeoutTotal => "timeout_total",
            Outcome::ClientCancelled => "client_cancelled",
            Outcome::BadRequest => "bad_request",
            Outcome::BodyTooLarge => "body_too_large",
            Outcome::UnknownModel => "unknown_model",
            Outcome::NoEndpoint => "no_endpoint",
            Outcome::Overloaded => "overloaded",
            Outcome::NoRoute => "no_route",
        }
    }

    /// The endpoint failure this outcome stands for, if any. Client cancellations and the total
    /// timeout (a long answer, not a sick endpoint) are not failures.
    pub fn failure(self) -> Option<crate::endpoint::Failure> {
        use crate::endpoint::Failure;
        match self {
            Outcome::Upstream5xx => Some(Failure::Status5xx),
            Outcome::ConnectError => Some(Failure::Connect),
            Outcome::UpstreamError => Some(Failure::Reset),
            Outcome::TimeoutConnect | Outcome::TimeoutFirstToken => Some(Failure::Timeout),
            Outcome::TimeoutIdle => Some(Failure::Stall),
            _ => None,
        }
    }

    /// Whether the endpoint answered as it should (2xx, or a 4xx that is the client's fault).
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Success | Outcome::Upstream4xx)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The outcome of a response passed through with this status.
    pub fn for_status(status: http::StatusCode) -> Outcome {
        if status.is_server_error() {
            Outcome::Upstream5xx
        } else if status.is_client_error() {
            Outcome::Upstream4xx
        } else {
            Outcome::Success
        }
    }
}
