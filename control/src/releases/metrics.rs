//! The releases' metrics: the step, the state and every gate's value and limit.

use infergate_release::engine::Release;
use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry};

/// Every state a release can be in, for `infergate_control_release_state`.
pub const STATES: &[&str] = &[
    "pending",
    "warming",
    "running",
    "paused",
    "promoted",
    "rolled_back",
    "aborted",
];

#[derive(Clone)]
pub struct ReleaseMetrics {
    step: IntGaugeVec,
    weight: IntGaugeVec,
    state: IntGaugeVec,
    gate: GaugeVec,
}

impl ReleaseMetrics {
    pub fn new(r: &Registry) -> prometheus::Result<Self> {
        let step = IntGaugeVec::new(
            Opts::new(
                "infergate_control_release_step",
                "The step a release is at (1 = the first; 0 when none runs).",
            ),
            &["release"],
        )?;
        let weight = IntGaugeVec::new(
            Opts::new(
                "infergate_control_release_canary_weight",
                "The canary's weight a release publishes, in percent.",
            ),
            &["release"],
        )?;
        let state = IntGaugeVec::new(
            Opts::new(
                "infergate_control_release_state",
                "1 for the state a release is in, 0 for the others.",
            ),
            &["release", "state"],
        )?;
        let gate = GaugeVec::new(
            Opts::new(
                "infergate_control_release_gate",
                "Each gate of the last judged step: its value, its limit, and pass (1) or fail (0).",
            ),
            &["release", "gate", "kind"],
        )?;
        r.register(Box::new(step.clone()))?;
        r.register(Box::new(weight.clone()))?;
        r.register(Box::new(state.clone()))?;
        r.register(Box::new(gate.clone()))?;
        Ok(ReleaseMetrics {
            step,
            weight,
            state,
            gate,
        })
    }

    /// Sets the series of `r` from its record.
    pub fn observe(&self, r: &Release) {
        let name = r.spec.name.as_str();
        let step = r.record.current_step.map_or(0, |i| i as i64 + 1);
        self.step.with_label_values(&[name]).set(step);
        self.weight
            .with_label_values(&[name])
            .set(i64::from(r.state.canary_weight));
        for s in STATES {
            self.state
                .with_label_values(&[name, s])
                .set(i64::from(r.record.state == *s));
        }
        let judged = r
            .record
            .steps
            .iter()
            .rev()
            .find(|s| s.judged_at_ms.is_some());
        for g in judged.map(|s| s.gates.as_slice()).unwrap_or_default() {
            if let Some(v) = g.value {
                self.gate
                    .with_label_values(&[name, &g.name, "value"])
                    .set(v);
            }
            if let Some(l) = g.limit {
                self.gate
                    .with_label_values(&[name, &g.name, "limit"])
                    .set(l);
            }
            self.gate
                .with_label_values(&[name, &g.name, "pass"])
                .set(if g.pass { 1.0 } else { 0.0 });
        }
    }

    /// Removes the series of a deleted release.
    pub fn forget(&self, r: &Release) {
        let name = r.spec.name.as_str();
        let _ = self.step.remove_label_values(&[name]);
        let _ = self.weight.remove_label_values(&[name]);
        for s in STATES {
            let _ = self.state.remove_label_values(&[name, s]);
        }
        for step in &r.record.steps {
            for g in &step.gates {
                for kind in ["value", "limit", "pass"] {
                    let _ = self.gate.remove_label_values(&[name, &g.name, kind]);
                }
            }
        }
    }
}
