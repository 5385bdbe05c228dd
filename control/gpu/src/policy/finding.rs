//! Building a finding, and the words its reason is written with.

use crate::health::{Action, Finding, GpuReading, Severity};

use super::rule::Rule;

pub(super) fn finding(gpu: u32, code: impl Into<String>, rule: Rule, reason: String) -> Finding {
    Finding {
        gpu,
        code: code.into(),
        severity: rule.severity,
        action: rule.action,
        reason,
    }
}

pub(super) fn ago(now_ms: u64, at_ms: u64) -> String {
    let s = now_ms.saturating_sub(at_ms) / 1000;
    if s >= 3600 {
        format!("{}h{}m ago", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{}s ago", s / 60, s % 60)
    } else {
        format!("{s}s ago")
    }
}

pub(super) fn action_name(a: Action) -> &'static str {
    match a {
        Action::None => "none",
        Action::RestartPod => "restart_pod",
        Action::ResetGpu => "reset_gpu",
        Action::RebootNode => "reboot_node",
    }
}

pub(super) fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Healthy => "healthy",
        Severity::Degraded => "degraded",
        Severity::Unhealthy => "unhealthy",
    }
}

pub(super) fn errors_text(g: &GpuReading) -> String {
    if g.errors.is_empty() {
        String::new()
    } else {
        format!(": {}", g.errors.join("; "))
    }
}
