//! Everything one reading says about one GPU, as findings (before hysteresis).

use std::collections::BTreeSet;

use crate::health::{Action, Finding, GpuReading, RecoveryAction};

use super::config::PolicyConfig;
use super::finding::{action_name, finding};
use super::memory::GpuMemory;
use super::memory_errors::memory_findings;
use super::probe_faults::probe_findings;
use super::replays::replay_finding;
use super::thermal::thermal_findings;
use super::xids::{remember_xids, xid_findings};

/// The findings of one GPU's reading, and the codes of the XIDs that arrived with it.
pub(super) fn findings_for(
    c: &PolicyConfig,
    g: &GpuReading,
    mem: &mut GpuMemory,
    now: u64,
) -> (Vec<Finding>, BTreeSet<String>) {
    let mut out = probe_findings(c, g, mem);
    let new_xids = remember_xids(g, mem);
    let xid_findings = xid_findings(c, mem, now);
    out.extend(memory_findings(c, g));
    out.extend(thermal_findings(c, g));
    out.extend(replay_finding(c, g, mem, now));

    let driver_decides = match recovery_finding(c, g) {
        Some(f) => {
            out.push(f);
            c.recovery_action.outranks_xid
        }
        None => false,
    };
    for mut f in xid_findings {
        if driver_decides && f.action != Action::None {
            f.reason = format!(
                "{} (action {} replaced by the driver's recovery action)",
                f.reason,
                action_name(f.action)
            );
            f.action = Action::None;
        }
        out.push(f);
    }
    (out, new_xids)
}

/// The finding for the driver's recovery action, unless it is `none`.
fn recovery_finding(c: &PolicyConfig, g: &GpuReading) -> Option<Finding> {
    let a = g.recovery_action?;
    let r = &c.recovery_action;
    let (rule, what) = match a {
        RecoveryAction::None => return None,
        RecoveryAction::GpuReset => (r.gpu_reset, "a GPU reset"),
        RecoveryAction::NodeReboot => (r.node_reboot, "a node reboot"),
        RecoveryAction::DrainP2p => (r.drain_p2p, "draining peer-to-peer traffic"),
        RecoveryAction::DrainAndReset => (r.drain_and_reset, "a drain and a GPU reset"),
    };
    Some(finding(
        g.index,
        "recovery_action",
        rule,
        format!("the driver asks for {what} (NVML_FI_DEV_GET_GPU_RECOVERY_ACTION)"),
    ))
}
