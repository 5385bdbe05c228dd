//! `infergate-control gpu-check [--json]`: read every GPU once, apply the policy, report.
//!
//! Exit codes: 0 every GPU healthy or degraded, 1 at least one GPU unhealthy, 2 the GPUs
//! could not be read (no NVML, no GPUs, or the read failed).

mod report;
mod text;
mod words;

use std::fmt::Write as _;

use crate::health::{NodeReading, Severity};
use crate::policy::{Policy, PolicyConfig};
use crate::probe::{GpuProbe, ProbeError};

pub use report::{CheckReport, CheckedGpu};
pub use text::render_text;

use report::{report, to_json};
use words::header;

/// Exit code: every GPU healthy or degraded.
pub const EXIT_HEALTHY: i32 = 0;
/// Exit code: at least one GPU unhealthy.
pub const EXIT_UNHEALTHY: i32 = 1;
/// Exit code: the GPUs could not be read.
pub const EXIT_CANNOT_READ: i32 = 2;

/// The result of a check, ready to print.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckOutcome {
    /// For people: one block per GPU.
    pub text: String,
    /// A [`CheckReport`] as pretty JSON.
    pub json: String,
    pub exit_code: i32,
}

/// Reads once through `probe` and applies a fresh policy built from `policy` (no history: no
/// hysteresis, no replay rate, only the XIDs that arrive during the read).
pub fn check(probe: &dyn GpuProbe, policy: &PolicyConfig) -> CheckOutcome {
    check_reading(probe.read(), policy)
}

/// [`check`] for a reading already made.
pub fn check_reading(
    reading: Result<NodeReading, ProbeError>,
    policy: &PolicyConfig,
) -> CheckOutcome {
    let reading = match reading {
        Ok(r) => r,
        Err(e) => return cannot_read(None, &e.to_string()),
    };
    if reading.gpus.is_empty() {
        return cannot_read(Some(&reading), "the driver reports no GPUs");
    }
    let verdicts = Policy::new(policy.clone()).evaluate(&reading);
    let worst = verdicts
        .iter()
        .map(|v| v.state)
        .max()
        .unwrap_or(Severity::Healthy);
    let exit_code = if worst == Severity::Unhealthy {
        EXIT_UNHEALTHY
    } else {
        EXIT_HEALTHY
    };
    let report = report(&reading, &verdicts, Some(worst), exit_code, None);
    CheckOutcome {
        text: render_text(&reading, &verdicts),
        json: to_json(&report),
        exit_code,
    }
}

fn cannot_read(reading: Option<&NodeReading>, error: &str) -> CheckOutcome {
    let empty = NodeReading::default();
    let r = reading.unwrap_or(&empty);
    let report = report(r, &[], None, EXIT_CANNOT_READ, Some(error.to_string()));
    let mut text = String::new();
    if reading.is_some() {
        text.push_str(&header(r));
    }
    let _ = writeln!(text, "cannot read the GPUs: {error}");
    CheckOutcome {
        text,
        json: to_json(&report),
        exit_code: EXIT_CANNOT_READ,
    }
}

#[cfg(test)]
mod tests;
