//! XID findings: the XID events remembered within the window, one finding per XID number.

use std::collections::{BTreeMap, BTreeSet};

use crate::health::{Action, Finding, GpuReading, Severity};

use super::config::PolicyConfig;
use super::finding::ago;
use super::memory::GpuMemory;
use super::xid::xid_info;

/// Remembers the XID events of a reading that `mem` has not seen yet; returns their codes
/// (`xid_N`).
pub(super) fn remember_xids(g: &GpuReading, mem: &mut GpuMemory) -> BTreeSet<String> {
    let mut new_xids = BTreeSet::new();
    for ev in &g.xids {
        if !mem
            .xids
            .iter()
            .any(|m| m.xid == ev.xid && m.at_ms == ev.at_ms)
        {
            mem.xids.push(ev.clone());
            new_xids.insert(format!("xid_{}", ev.xid));
        }
    }
    new_xids
}

/// Findings for the XIDs remembered within the window (expired ones are dropped), one per
/// XID number.
pub(super) fn xid_findings(config: &PolicyConfig, mem: &mut GpuMemory, now: u64) -> Vec<Finding> {
    let window_ms = u64::try_from(config.xid_window.get().as_millis()).unwrap_or(u64::MAX);
    mem.xids.retain(|e| e.at_ms.saturating_add(window_ms) > now);
    let mut by_xid: BTreeMap<u64, (u32, u64)> = BTreeMap::new();
    for e in &mem.xids {
        let entry = by_xid.entry(e.xid).or_insert((0, 0));
        entry.0 += 1;
        entry.1 = entry.1.max(e.at_ms);
    }
    let mut out = Vec::new();
    for (xid, (count, last_at)) in by_xid {
        let rule = config.xid_rule(xid);
        let (mut severity, mut action) = (rule.severity, rule.action);
        let mut escalated = false;
        if let Some(rep) = rule.repeat {
            if count >= rep.count {
                severity = severity.max(rep.severity);
                action = action.max(rep.action);
                escalated = true;
            }
        }
        if severity == Severity::Healthy && action == Action::None {
            continue; // ignored XID
        }
        let what = match xid_info(xid) {
            Some(info) => format!("XID {xid} ({}: {})", info.mnemonic, info.meaning),
            None => format!("XID {xid} (not in the table)"),
        };
        let times = if count == 1 {
            "once".to_string()
        } else {
            format!("{count} times")
        };
        out.push(Finding {
            gpu: mem.index,
            code: format!("xid_{xid}"),
            severity,
            action,
            reason: format!(
                "{what}: {times} in the last {}, last {}{}",
                config.xid_window,
                ago(now, last_at),
                if escalated {
                    " (recurring: escalated)"
                } else {
                    ""
                }
            ),
        });
    }
    out
}
