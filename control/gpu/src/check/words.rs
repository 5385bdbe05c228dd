//! The words and units of the text report.

use crate::health::{Action, NodeReading, Severity};

pub(super) fn header(reading: &NodeReading) -> String {
    format!(
        "node {}  driver {}\n",
        if reading.node.is_empty() {
            "-"
        } else {
            &reading.node
        },
        reading.driver_version.as_deref().unwrap_or("unknown")
    )
}

pub(super) fn opt<T: std::fmt::Display>(v: Option<T>, unit: &str) -> String {
    match v {
        Some(v) => format!("{v}{unit}"),
        None => "not supported".to_string(),
    }
}

pub(super) fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

pub(super) fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

pub(super) fn state_word(s: Severity) -> &'static str {
    match s {
        Severity::Healthy => "HEALTHY",
        Severity::Degraded => "DEGRADED",
        Severity::Unhealthy => "UNHEALTHY",
    }
}

pub(super) fn action_word(a: Action) -> &'static str {
    match a {
        Action::None => "none",
        Action::RestartPod => "restart the pod",
        Action::ResetGpu => "reset the GPU",
        Action::RebootNode => "reboot the node",
    }
}
