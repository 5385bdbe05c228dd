//! Findings about the probe's own failures on one GPU: lost, timed out, reset required, failed.

use crate::health::{Action, CallFault, Finding, GpuReading};

use super::config::PolicyConfig;
use super::finding::{errors_text, finding};
use super::memory::GpuMemory;

/// The probe-failure findings of one reading; counts consecutive timeouts in `mem`.
pub(super) fn probe_findings(
    c: &PolicyConfig,
    g: &GpuReading,
    mem: &mut GpuMemory,
) -> Vec<Finding> {
    let i = g.index;
    let mut out = Vec::new();
    let faults: Vec<CallFault> = if g.faults.is_empty() && !g.errors.is_empty() {
        vec![CallFault::Error]
    } else {
        g.faults.clone()
    };
    if faults.contains(&CallFault::GpuLost) {
        out.push(finding(
            i,
            "gpu_lost",
            c.probe.gpu_lost,
            format!("the GPU is lost (fallen off the bus){}", errors_text(g)),
        ));
    }
    if faults.contains(&CallFault::Timeout) {
        mem.timeout_streak += 1;
        let mut rule = c.probe.timeout;
        if mem.timeout_streak < c.probe.timeout_action_after {
            rule.action = Action::None;
        }
        out.push(finding(
            i,
            "probe_timeout",
            rule,
            format!(
                "NVML calls did not answer in time ({} consecutive readings){}",
                mem.timeout_streak,
                errors_text(g)
            ),
        ));
    } else {
        mem.timeout_streak = 0;
    }
    if faults.contains(&CallFault::ResetRequired) {
        out.push(finding(
            i,
            "reset_required",
            c.probe.reset_required,
            format!("the GPU requires a reset{}", errors_text(g)),
        ));
    }
    if faults.contains(&CallFault::Error) {
        out.push(finding(
            i,
            "probe_error",
            c.probe.error,
            format!("NVML calls failed{}", errors_text(g)),
        ));
    }
    out
}
