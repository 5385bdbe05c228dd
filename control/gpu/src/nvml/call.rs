//! Why one bounded NVML call produced no value, and how that reads.

use std::time::Duration;

use nvml_wrapper::error::NvmlError;

/// Formats a duration the way people write timeouts: `2s`, `500ms`, `1.5s`.
pub(crate) fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 1000 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{ms}ms")
    }
}

/// Why one bounded call produced no value.
pub(super) enum CallError {
    /// Did not answer within the timeout.
    Timeout(Duration),
    /// An earlier call of the same function on the same GPU has not returned yet.
    StillHung(Duration),
    Nvml(NvmlError),
    /// The worker thread could not be started, or the call panicked.
    Internal(String),
}

impl CallError {
    /// What went wrong with the call of `name`, for people.
    pub(super) fn message(&self, name: &str) -> String {
        match self {
            CallError::Timeout(d) => format!("{name} did not answer within {}", human_duration(*d)),
            CallError::StillHung(since) => format!(
                "{name} still has not answered a call made {} ago",
                human_duration(Duration::from_millis(since.as_millis() as u64 / 100 * 100))
            ),
            CallError::Nvml(e) => format!("{name} failed: {e}"),
            CallError::Internal(msg) => msg.clone(),
        }
    }
}
