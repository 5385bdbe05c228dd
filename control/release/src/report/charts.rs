//! The charts of stable against canary per step: TTFT p95, TPOT p95 and error rate, each with
//! the canary's limit from the step's gate of the same name.

use crate::record::{ReleaseRecord, StepRecord, VariantWindow};

use super::bars::{self, Group};
use super::text::error_rate;

/// One chart: its title, unit, gate and how a variant's figure is read (in the chart's unit).
struct Figure {
    title: &'static str,
    unit: &'static str,
    gate: &'static str,
    /// The chart's unit per unit of the record (seconds to ms, rate to %).
    scale: f64,
    read: fn(&VariantWindow) -> Option<f64>,
}

const FIGURES: [Figure; 3] = [
    Figure {
        title: "TTFT p95 per step",
        unit: "ms",
        gate: "ttft_p95",
        scale: 1000.0,
        read: |w| w.ttft_s.p95,
    },
    Figure {
        title: "TPOT p95 per step",
        unit: "ms",
        gate: "tpot_p95",
        scale: 1000.0,
        read: |w| w.tpot_s.p95,
    },
    Figure {
        title: "Error rate per step",
        unit: "%",
        gate: "error_rate",
        scale: 100.0,
        read: |w| error_rate(w.requests, w.error_rate),
    },
];

fn group(fig: &Figure, s: &StepRecord) -> Group {
    let limit = s
        .gates
        .iter()
        .find(|g| g.name == fig.gate)
        .and_then(|g| g.limit);
    Group {
        label: format!("{} %", s.canary_weight),
        verdict: s.verdict.clone(),
        stable: (fig.read)(&s.stable).map(|v| v * fig.scale),
        canary: (fig.read)(&s.canary).map(|v| v * fig.scale),
        limit: limit.map(|v| v * fig.scale),
    }
}

/// The three charts, one after the other.
pub(super) fn all(out: &mut String, r: &ReleaseRecord) {
    for fig in &FIGURES {
        let groups: Vec<Group> = r.steps.iter().map(|s| group(fig, s)).collect();
        bars::chart(out, fig.title, fig.unit, &groups);
    }
}
