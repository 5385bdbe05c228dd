//! The PCIe replay-rate finding, from the cumulative replay counter.

use crate::health::{Action, Finding, GpuReading, Severity};

use super::config::PolicyConfig;
use super::finding::finding;
use super::memory::GpuMemory;
use super::rule::Rule;

/// The replay-rate finding of one reading, if the rate over the window is above a limit;
/// keeps the counter's recent values in `mem`.
pub(super) fn replay_finding(
    config: &PolicyConfig,
    g: &GpuReading,
    mem: &mut GpuMemory,
    now: u64,
) -> Option<Finding> {
    let count = g.pcie_replay_count?;
    let window_ms = u64::try_from(config.pcie_replays.window.get().as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    if mem.replays.back().is_some_and(|&(_, last)| count < last) {
        mem.replays.clear(); // the counter was reset (driver reload)
    }
    mem.replays.push_back((now, count));
    while mem.replays.len() > 2
        && mem
            .replays
            .get(1)
            .is_some_and(|&(t, _)| t.saturating_add(window_ms) <= now)
    {
        mem.replays.pop_front();
    }
    let &(t0, c0) = mem.replays.front()?;
    if mem.replays.len() < 2 {
        return None;
    }
    let span = now.saturating_sub(t0).max(window_ms);
    let delta = count.saturating_sub(c0);
    let per_minute = delta.saturating_mul(60_000) / span;
    let p = &config.pcie_replays;
    let (severity, limit) = if p.unhealthy_per_minute.is_some_and(|l| per_minute > l) {
        (Severity::Unhealthy, p.unhealthy_per_minute)
    } else if p.degraded_per_minute.is_some_and(|l| per_minute > l) {
        (Severity::Degraded, p.degraded_per_minute)
    } else {
        return None;
    };
    Some(finding(
        g.index,
        "pcie_replays",
        Rule::new(severity, Action::None),
        format!(
            "{per_minute} PCIe replays per minute (limit {})",
            limit.unwrap_or(0)
        ),
    ))
}
