//! The step engine: a pure state machine driven by [`Release::tick`] with the time and what
//! was observed (a metrics snapshot, the canary's endpoints). Phases: warming (when the spec
//! asks for warmup) → step 0 → ... → promoted after the 100 % step; a failed gate rolls back
//! (canary 0 %) and either stays there or pauses and retries from the first step.
//!
//! A step is judged once `step_interval` has passed since its window opened *and* the canary
//! served `min_requests` in it. A canary endpoint ejected for an unhealthy GPU rolls back at
//! once. Everything a release needs to resume is in [`Release`], which is saved as it is.

mod actions;
pub mod gates;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::metrics::routes::CanaryView;
use crate::metrics::Snapshot;
use crate::record::{ReleaseRecord, StepRecord, VariantWindow};
use crate::spec::ReleaseSpec;

/// A release: its spec, what it recorded, and where it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub spec: ReleaseSpec,
    pub record: ReleaseRecord,
    pub state: EngineState,
}

/// Where the engine is; saved with the release so that it resumes at the same place.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    pub phase: Phase,
    /// Retries after a rollback taken so far.
    pub retries: u32,
    /// The weights' generation on the feed: grows with every change, across restarts.
    pub generation: u64,
    /// The canary's weight now, in percent (the stable variant has the rest).
    pub canary_weight: u32,
    /// The stable figures of the last judged step where the stable variant served requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_ref: Option<(usize, VariantWindow)>,
    /// A later release of the same model that took over: this one's weights are no longer
    /// published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    /// The last error reading the metrics or the gateways' routes, if the last read failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_error: Option<String>,
}

/// The phase of a release.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for every canary endpoint to be warm.
    Warming { since_ms: u64 },
    /// Running step `index`; its window opens at the first snapshot read in it.
    Step {
        index: usize,
        started_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        baseline: Option<Baseline>,
    },
    /// Rolled back; the steps start again at `until_ms`.
    Paused { until_ms: u64 },
    /// Promoted, rolled back or aborted.
    #[default]
    Done,
}

/// The cumulative figures when a step's window opened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub at_ms: u64,
    pub snapshot: Snapshot,
}

/// What was observed for one tick.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    /// The model's cumulative figures; `None` when not read (or not needed) this tick.
    pub snapshot: Option<Result<Snapshot, String>>,
    /// The canary's endpoints on every gateway; `None` without gateways to ask.
    pub canary: Option<Result<CanaryView, String>>,
}

/// A transition, for logs, Kubernetes Events and the CLI.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// CamelCase: `ReleaseStep`, `ReleasePromoted`, `ReleaseRolledBack`, ...
    pub reason: &'static str,
    /// Whether it is bad news (a Warning event).
    pub warning: bool,
    pub message: String,
}

impl Release {
    /// A new release, started at `now_ms`: warming when the spec asks for warmup, else at its
    /// first step.
    pub fn new(spec: ReleaseSpec, now_ms: u64) -> (Release, Vec<Transition>) {
        let record = ReleaseRecord {
            name: spec.name.clone(),
            model: spec.model.clone(),
            stable: spec.stable.clone(),
            canary: spec.canary.clone(),
            state: "pending".into(),
            started_at_ms: now_ms,
            ..ReleaseRecord::default()
        };
        let mut r = Release {
            spec,
            record,
            state: EngineState::default(),
        };
        r.set_weights(0, now_ms);
        let mut out = Vec::new();
        if r.spec.warmup.as_ref().is_some_and(|w| w.required) {
            r.state.phase = Phase::Warming { since_ms: now_ms };
            r.record.state = "warming".into();
            out.push(r.note(
                "ReleaseWarming",
                false,
                "waiting for the canary to be warm".into(),
            ));
        } else {
            out.push(r.start_step(0, now_ms));
        }
        (r, out)
    }

    /// Whether the release still moves (not promoted, rolled back or aborted).
    pub fn is_active(&self) -> bool {
        self.state.phase != Phase::Done
    }

    /// Whether the next tick needs a metrics snapshot.
    pub fn needs_snapshot(&self) -> bool {
        matches!(self.state.phase, Phase::Step { .. })
    }

    /// Whether the next tick needs the canary's endpoints.
    pub fn needs_canary_view(&self) -> bool {
        match self.state.phase {
            Phase::Warming { .. } => true,
            Phase::Step { .. } => self.spec.gates.gpu_healthy,
            _ => false,
        }
    }

    /// Advances the release with what was observed at `now_ms`. Returns the transitions
    /// taken and whether the saved state changed.
    pub fn tick(&mut self, now_ms: u64, obs: Observation) -> (Vec<Transition>, bool) {
        let mut out = Vec::new();
        let before = self.state.clone();
        self.state.read_error = None;
        let view = match obs.canary {
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => {
                self.state.read_error = Some(e);
                None
            }
            None => None,
        };
        match self.state.phase.clone() {
            Phase::Done => {}
            Phase::Paused { until_ms } => {
                if now_ms >= until_ms {
                    self.state.retries += 1;
                    out.push(self.note(
                        "ReleaseRetry",
                        false,
                        format!("retry {} of {}", self.state.retries, self.max_retries()),
                    ));
                    out.push(self.start_step(0, now_ms));
                }
            }
            Phase::Warming { since_ms } => self.warming(since_ms, now_ms, view.as_ref(), &mut out),
            Phase::Step {
                index,
                started_ms,
                baseline,
            } => {
                let snap = match obs.snapshot {
                    Some(Ok(s)) => Some(s),
                    Some(Err(e)) => {
                        self.state.read_error = Some(e);
                        None
                    }
                    None => None,
                };
                self.step(index, started_ms, baseline, snap, view, now_ms, &mut out);
            }
        }
        let changed = !out.is_empty() || before.phase != self.state.phase;
        (out, changed)
    }

    fn warming(
        &mut self,
        since_ms: u64,
        now_ms: u64,
        view: Option<&CanaryView>,
        out: &mut Vec<Transition>,
    ) {
        let timeout = self
            .spec
            .warmup
            .as_ref()
            .map_or(0, |w| w.timeout.get().as_millis() as u64);
        if let Some(v) = view {
            if !v.endpoints.is_empty() && v.cold().is_empty() {
                out.push(self.note(
                    "ReleaseWarm",
                    false,
                    format!("all {} canary endpoints are warm", v.endpoints.len()),
                ));
                out.push(self.start_step(0, now_ms));
                return;
            }
        }
        if now_ms.saturating_sub(since_ms) >= timeout {
            let cold = view.map_or_else(
                || "the gateways could not be read".to_owned(),
                |v| {
                    let c: Vec<&str> = v.cold().iter().map(|e| e.url.as_str()).collect();
                    if v.endpoints.is_empty() {
                        "no canary endpoint".to_owned()
                    } else {
                        format!("cold: {}", c.join(", "))
                    }
                },
            );
            self.rollback(
                format!(
                    "warmup not complete within {}: {cold}",
                    self.spec
                        .warmup
                        .as_ref()
                        .map(|w| w.timeout.to_string())
                        .unwrap_or_default()
                ),
                now_ms,
                out,
            );
        }
    }

    fn current_step_mut(&mut self) -> Option<&mut StepRecord> {
        self.record.steps.last_mut()
    }

    fn note(&self, reason: &'static str, warning: bool, message: String) -> Transition {
        Transition {
            reason,
            warning,
            message: format!("release {}: {message}", self.spec.name),
        }
    }

    fn max_retries(&self) -> u32 {
        match self.spec.on_rollback {
            crate::spec::OnRollback::Retry { max_retries, .. } => max_retries,
            crate::spec::OnRollback::Stay => 0,
        }
    }
}
