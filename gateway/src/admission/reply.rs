//! What admission answers: 429 with the OpenAI error body and `Retry-After`, and OpenAI's
//! `x-ratelimit-*` headers (on every response of a rate-limited tenant).

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use infergate_wire::openai::ApiError;

/// One limit as the headers show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Per minute.
    pub limit: u64,
    /// Left now.
    pub remaining: u64,
    /// Until the bucket is full again.
    pub reset: Duration,
}

/// The `x-ratelimit-*` headers of a request's tenant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateHeaders {
    pub requests: Option<Window>,
    pub tokens: Option<Window>,
}

static LIMIT_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
static LIMIT_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-limit-tokens");
static REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
static REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");
static RESET_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-reset-requests");
static RESET_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-reset-tokens");

impl RateHeaders {
    /// Writes the headers of the limits that apply (none when the tenant has no limit).
    pub fn apply(&self, h: &mut HeaderMap) {
        let sets = [
            (
                self.requests,
                &LIMIT_REQUESTS,
                &REMAINING_REQUESTS,
                &RESET_REQUESTS,
            ),
            (self.tokens, &LIMIT_TOKENS, &REMAINING_TOKENS, &RESET_TOKENS),
        ];
        for (w, limit, remaining, reset) in sets {
            let Some(w) = w else { continue };
            h.insert(limit.clone(), HeaderValue::from(w.limit));
            h.insert(remaining.clone(), HeaderValue::from(w.remaining));
            if let Ok(v) = HeaderValue::from_str(&go_duration(w.reset)) {
                h.insert(reset.clone(), v);
            }
        }
    }
}

/// A duration as OpenAI writes its reset headers: `20ms`, `1s`, `6m0s`, `1h2m3s`.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    // Whole seconds, rounded up: a client that waits this long finds the limit reset.
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// `Retry-After` in whole seconds, at least 1.
pub fn retry_after_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// A 429 with the OpenAI error body `{"error":{"code","message","param":null,"type"}}` and
/// `Retry-After`.
pub fn too_many(code: &str, kind: &str, message: &str, retry_after: Duration) -> Response<Bytes> {
    let body = ApiError::new(code, message, kind).body();
    let mut resp = Response::new(Bytes::from(body));
    *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after_secs(retry_after)),
    );
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn durations_read_like_openais() {
        assert_eq!(go_duration(Duration::from_millis(12)), "12ms");
        assert_eq!(go_duration(Duration::from_millis(1000)), "1s");
        assert_eq!(go_duration(Duration::from_millis(1001)), "2s");
        assert_eq!(go_duration(Duration::from_secs(360)), "6m0s");
        assert_eq!(go_duration(Duration::from_secs(3723)), "1h2m3s");
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(2100)), 3);
    }

    #[test]
    fn headers_of_the_limits_that_apply() {
        let mut h = HeaderMap::new();
        RateHeaders {
            requests: None,
            tokens: Some(Window {
                limit: 1000,
                remaining: 40,
                reset: Duration::from_millis(57_600),
            }),
        }
        .apply(&mut h);
        assert_eq!(h["x-ratelimit-limit-tokens"], "1000");
        assert_eq!(h["x-ratelimit-remaining-tokens"], "40");
        assert_eq!(h["x-ratelimit-reset-tokens"], "58s");
        assert!(h.get("x-ratelimit-limit-requests").is_none());
        assert_eq!(h.len(), 3);
    }

    #[test]
    fn a_429_has_the_openai_body_and_retry_after() {
        let r = too_many(
            "rate_limit_exceeded",
            "tokens",
            "slow down",
            Duration::from_millis(1500),
        );
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    }
}
