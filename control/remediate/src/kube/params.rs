//! Parameters of every write, and the helpers for times and texts.

use std::time::{Duration, SystemTime};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{PatchParams, PostParams};

/// `fieldManager` of every write, and the events' reporting component.
pub const FIELD_MANAGER: &str = "infergate-control";

pub(super) fn tune(kc: &mut kube::Config) {
    kc.default_retry = false;
    kc.read_timeout = Some(Duration::from_secs(30));
}

pub(super) fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}

pub(super) fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    }
}

/// A short, growing pause between conflicting writes (10, 20, 40 … ms).
pub(super) fn conflict_pause(attempt: u32) -> Duration {
    Duration::from_millis(10u64 << attempt.min(6))
}

pub(super) fn now_rfc3339() -> String {
    serde_json::to_value(Time(Timestamp::now()))
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub(super) fn parse_time(s: &str) -> Option<SystemTime> {
    s.parse::<Timestamp>().ok().map(SystemTime::from)
}

/// At most `max` bytes, cut at a character boundary.
pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}
