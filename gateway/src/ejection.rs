//! How an endpoint's ejection is shown by the admin API and `explain`.

use serde_json::json;
use tokio::time::Instant;

use crate::endpoint::EndpointState;

/// Why an endpoint is out of service, and for how much longer (`None` when it is in).
pub fn ejection_json(s: &EndpointState, now: Instant) -> Option<serde_json::Value> {
    s.ejection(now).map(|(until, reason)| {
        json!({
            "reason": reason.as_str(),
            "detail": s.warm_reason().or_else(|| s.health_reason(now)),
            "remaining_seconds": (until - now).as_secs_f64(),
        })
    })
}
