//! Findings about temperature and clock throttling.

use crate::health::{Action, Finding, GpuReading, Severity};

use super::config::PolicyConfig;
use super::finding::finding;
use super::rule::Rule;

/// The temperature and throttle findings of one reading.
pub(super) fn thermal_findings(c: &PolicyConfig, g: &GpuReading) -> Vec<Finding> {
    let i = g.index;
    let mut out = Vec::new();
    if let Some(t) = g.temperature_c {
        let sev = if c.temperature.unhealthy_c.is_some_and(|l| t >= l) {
            Some((Severity::Unhealthy, c.temperature.unhealthy_c))
        } else if c.temperature.degraded_c.is_some_and(|l| t >= l) {
            Some((Severity::Degraded, c.temperature.degraded_c))
        } else {
            None
        };
        if let Some((severity, Some(limit))) = sev {
            out.push(finding(
                i,
                "temperature",
                Rule::new(severity, Action::None),
                format!("temperature {t} °C (limit {limit} °C)"),
            ));
        }
    }
    let hits: Vec<&String> = g
        .throttle_names
        .iter()
        .filter(|n| c.throttle.reasons.iter().any(|r| r.eq_ignore_ascii_case(n)))
        .collect();
    if !hits.is_empty() && c.throttle.severity > Severity::Healthy {
        out.push(finding(
            i,
            "throttle",
            Rule::new(c.throttle.severity, c.throttle.action),
            format!(
                "clocks throttled: {}",
                hits.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    out
}
