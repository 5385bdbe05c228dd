//! The verdict of one GPU from its findings: hysteresis on the state, the strongest action,
//! and the findings that are new.

use std::collections::BTreeSet;

use crate::health::{Action, Finding, Severity};

use super::finding::severity_name;
use super::memory::GpuMemory;
use super::verdict::GpuVerdict;

/// Applies hysteresis (the state falls after `healthy_reads` better readings) and picks the
/// action.
pub(super) fn conclude(
    healthy_reads: u32,
    mem: &mut GpuMemory,
    mut findings: Vec<Finding>,
    new_xids: BTreeSet<String>,
) -> GpuVerdict {
    let raw = findings
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Healthy);
    let published = mem.published.unwrap_or(Severity::Healthy);
    let state = if raw >= published {
        mem.below_streak = 0;
        mem.below_worst = None;
        raw
    } else {
        mem.below_streak += 1;
        let worst = mem.below_worst.unwrap_or(Severity::Healthy).max(raw);
        if mem.below_streak >= healthy_reads {
            mem.below_streak = 0;
            mem.below_worst = None;
            worst
        } else {
            mem.below_worst = Some(worst);
            findings.push(Finding {
                gpu: mem.index,
                code: "recovering".into(),
                severity: published,
                action: Action::None,
                reason: format!(
                    "stays {} until {} consecutive readings are better ({} so far)",
                    severity_name(published),
                    healthy_reads,
                    mem.below_streak
                ),
            });
            published
        }
    };
    mem.published = Some(state);
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| b.action.cmp(&a.action))
            .then_with(|| a.code.cmp(&b.code))
    });
    let action = findings
        .iter()
        .map(|f| f.action)
        .max()
        .unwrap_or(Action::None);
    let codes: BTreeSet<String> = findings.iter().map(|f| f.code.clone()).collect();
    let mut new_findings: Vec<String> = codes
        .iter()
        .filter(|c| !mem.last_codes.contains(*c) || new_xids.contains(*c))
        .filter(|c| c.as_str() != "recovering")
        .cloned()
        .collect();
    new_findings.sort();
    mem.last_codes = codes;
    GpuVerdict {
        index: mem.index,
        uuid: mem.uuid.clone(),
        state,
        findings,
        action,
        new_findings,
    }
}
