//! The engine's moves: start a step, judge it, roll back, promote, abort.

use super::gates::{self, Reference};
use super::{Baseline, Phase, Release, Transition};
use crate::metrics::routes::CanaryView;
use crate::metrics::Snapshot;
use crate::record::{StepRecord, WeightChange};
use crate::spec::OnRollback;

impl Release {
    /// Sets the canary's weight, recording the change with a new generation.
    pub(super) fn set_weights(&mut self, canary: u32, now_ms: u64) {
        if self.state.generation > 0 && self.state.canary_weight == canary {
            return;
        }
        self.state.canary_weight = canary;
        // Time-based so that a release deleted and created again still moves forward.
        self.state.generation = (self.state.generation + 1).max(now_ms);
        self.record.weights.push(WeightChange {
            at_ms: now_ms,
            stable: 100 - canary,
            canary,
        });
    }

    pub(super) fn start_step(&mut self, index: usize, now_ms: u64) -> Transition {
        let weight = self.spec.canary_weight(index);
        self.set_weights(weight, now_ms);
        self.state.phase = Phase::Step {
            index,
            started_ms: now_ms,
            baseline: None,
        };
        self.record.state = "running".into();
        self.record.reason = None;
        self.record.current_step = Some(index);
        self.record.steps.push(StepRecord {
            index,
            canary_weight: weight,
            started_at_ms: now_ms,
            verdict: "pending".into(),
            ..StepRecord::default()
        });
        self.note(
            "ReleaseStep",
            false,
            format!(
                "step {} of {}: canary {weight} %, stable {} %",
                index + 1,
                self.spec.steps.len(),
                100 - weight
            ),
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn step(
        &mut self,
        index: usize,
        started_ms: u64,
        baseline: Option<Baseline>,
        snap: Option<Snapshot>,
        view: Option<CanaryView>,
        now_ms: u64,
        out: &mut Vec<Transition>,
    ) {
        if self.spec.gates.gpu_healthy
            && view.as_ref().is_some_and(|v| !v.gpu_unhealthy().is_empty())
        {
            let gate = gates::gpu_gate(view.as_ref());
            let reason = format!(
                "gate gpu_healthy failed at step {}: {}",
                index + 1,
                gate.detail
            );
            if let Some(s) = self.current_step_mut() {
                s.judged_at_ms = Some(now_ms);
                s.gates = vec![gate];
                s.verdict = "fail".into();
            }
            self.rollback(reason, now_ms, out);
            return;
        }
        let Some(snap) = snap else { return };
        let baseline = match baseline {
            Some(b) if !snap.went_back(&b.snapshot) => b,
            _ => {
                // The window opens now (a gateway that restarted starts its counters again).
                self.state.phase = Phase::Step {
                    index,
                    started_ms,
                    baseline: Some(Baseline {
                        at_ms: now_ms,
                        snapshot: snap,
                    }),
                };
                return;
            }
        };
        let stable = snap.window(&baseline.snapshot, &self.spec.stable);
        let canary = snap.window(&baseline.snapshot, &self.spec.canary);
        let window_ms = now_ms.saturating_sub(baseline.at_ms);
        if let Some(s) = self.current_step_mut() {
            s.window_s = window_ms as f64 / 1000.0;
            s.stable = stable.clone();
            s.canary = canary.clone();
        }
        let interval = self.spec.step_interval.get().as_millis() as u64;
        if window_ms < interval || canary.requests < self.spec.min_requests {
            return;
        }
        let (reference, from_step) = if stable.requests > 0 {
            (stable.clone(), None)
        } else if let Some((i, w)) = &self.state.stable_ref {
            (w.clone(), Some(*i))
        } else {
            (stable.clone(), None)
        };
        let results = gates::evaluate(
            &self.spec.gates,
            &canary,
            Reference {
                window: &reference,
                from_step,
            },
            view.as_ref(),
        );
        let failed: Vec<String> = results
            .iter()
            .filter(|g| !g.pass)
            .map(|g| format!("{}: {}", g.name, g.detail))
            .collect();
        if let Some(s) = self.current_step_mut() {
            s.judged_at_ms = Some(now_ms);
            s.gates = results;
            s.verdict = if failed.is_empty() { "pass" } else { "fail" }.into();
        }
        let stable_requests = stable.requests;
        if stable.requests > 0 {
            self.state.stable_ref = Some((index, stable));
        }
        if !failed.is_empty() {
            let reason = format!("step {} failed: {}", index + 1, failed.join("; "));
            self.rollback(reason, now_ms, out);
            return;
        }
        out.push(self.note(
            "ReleaseStepPassed",
            false,
            format!(
                "step {} passed: canary {} requests, stable {}",
                index + 1,
                canary.requests,
                stable_requests
            ),
        ));
        if index + 1 < self.spec.steps.len() {
            out.push(self.start_step(index + 1, now_ms));
        } else {
            self.finish("promoted", "every step passed".into(), 100, now_ms);
            out.push(self.note("ReleasePromoted", false, "promoted: canary 100 %".into()));
        }
    }

    /// Canary to 0 %; then a pause before a retry, or the end.
    pub(super) fn rollback(&mut self, reason: String, now_ms: u64, out: &mut Vec<Transition>) {
        self.set_weights(0, now_ms);
        out.push(self.note("ReleaseRolledBack", true, format!("rolled back: {reason}")));
        if let OnRollback::Retry { pause, max_retries } = &self.spec.on_rollback {
            if self.state.retries < *max_retries {
                let until_ms = now_ms + pause.get().as_millis() as u64;
                self.state.phase = super::Phase::Paused { until_ms };
                self.record.state = "paused".into();
                self.record.reason = Some(reason);
                self.record.current_step = None;
                out.push(self.note(
                    "ReleasePaused",
                    false,
                    format!("retrying from the first step in {pause}"),
                ));
                return;
            }
        }
        self.finish("rolled_back", reason, 0, now_ms);
    }

    fn finish(&mut self, state: &str, reason: String, canary: u32, now_ms: u64) {
        self.set_weights(canary, now_ms);
        self.state.phase = Phase::Done;
        self.record.state = state.into();
        self.record.reason = Some(reason);
        self.record.ended_at_ms = Some(now_ms);
        self.record.current_step = None;
    }

    /// Stops the release with the stable variant at 100 % (state `aborted`).
    pub fn abort(&mut self, now_ms: u64) -> Result<Transition, String> {
        self.check_active()?;
        self.finish("aborted", "aborted".into(), 0, now_ms);
        Ok(self.note("ReleaseAborted", true, "aborted: stable 100 %".into()))
    }

    /// Ends the release with the canary at 100 % at once (state `promoted`).
    pub fn promote(&mut self, now_ms: u64) -> Result<Transition, String> {
        self.check_active()?;
        self.finish("promoted", "promoted by hand".into(), 100, now_ms);
        Ok(self.note(
            "ReleasePromoted",
            false,
            "promoted by hand: canary 100 %".into(),
        ))
    }

    fn check_active(&self) -> Result<(), String> {
        if self.is_active() {
            Ok(())
        } else {
            Err(format!(
                "release {} has ended ({})",
                self.spec.name, self.record.state
            ))
        }
    }

    /// The change to make in the gateway config so that it agrees with the final weights.
    pub fn final_split(&self) -> Option<String> {
        if self.is_active() {
            return None;
        }
        let c = self.state.canary_weight;
        Some(format!(
            "set the split of model {:?} to {{ variant: {}, weight: {} }}, {{ variant: {}, weight: {} }}",
            self.spec.model,
            self.spec.stable,
            100 - c,
            self.spec.canary,
            c
        ))
    }
}
