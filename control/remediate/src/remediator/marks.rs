//! The marks that follow the verdicts at once: the `GpuHealthy` condition and the taint, and their state restored at start.

use std::time::SystemTime;

use tokio::time::Instant;

use super::verdicts::{taint_value, Verdicts};
use super::Remediator;
use crate::outcome::{Outcome, Step};
use crate::types::{EventKind, GpuCondition, NodeTaint};

impl Remediator {
    pub(super) async fn restore(&mut self, now: Instant, out: &mut Outcome) {
        match self.actions.node_state().await {
            Ok(state) => {
                self.restored = true;
                self.cordoned_by_us = state.cordoned_by_us;
                self.request_pending = state.requested_action.is_some();
                self.rebooted = state.rebooted_since_request();
                self.condition_status = state.condition_healthy;
                self.taint = Some(state.taint_value);
                if let Some(at) = state.requested_at {
                    let ago = SystemTime::now().duration_since(at).unwrap_or_default();
                    let cooldown = self.config.cooldown.get();
                    if ago < cooldown {
                        self.cooldown_until = Some(now + (cooldown - ago));
                    }
                }
            }
            Err(e) => out.errors.push(format!("read node state: {e}")),
        }
    }

    // === condition and taint ===

    pub(super) async fn mark(&mut self, v: &Verdicts, out: &mut Outcome) {
        let healthy = v.unhealthy.is_empty();
        let key = (healthy, v.unhealthy.clone());
        if self.condition.as_ref() != Some(&key) {
            let transition = self.condition_status != Some(healthy);
            let condition = GpuCondition {
                healthy,
                reason: if healthy {
                    "GpusHealthy"
                } else {
                    "GpuUnhealthy"
                }
                .into(),
                message: v.message.clone(),
                transition,
            };
            let result = self.actions.set_condition(&condition, &v.cause).await;
            if self.done("set condition", result, out).is_some() {
                self.condition = Some(key);
                self.condition_status = Some(healthy);
                out.steps.push(Step::SetCondition { healthy });
                if transition || !healthy {
                    let (kind, what) = if healthy {
                        (EventKind::Normal, "GPU condition True".to_owned())
                    } else {
                        (
                            EventKind::Warning,
                            format!("GPU condition False: {}", v.message),
                        )
                    };
                    self.event(kind, &condition.reason, "SetCondition", what)
                        .await;
                }
            }
        }

        let desired = (!healthy).then(|| taint_value(&v.unhealthy));
        if self.taint.as_ref() != Some(&desired) {
            let result = match &desired {
                Some(value) => {
                    let taint = NodeTaint {
                        key: self.config.taint_key.clone(),
                        value: value.clone(),
                        effect: self.config.taint_effect,
                    };
                    self.actions.add_taint(&taint, &v.cause).await
                }
                None => {
                    self.actions
                        .remove_taint(&self.config.taint_key, &v.cause)
                        .await
                }
            };
            if let Some(changed) = self.done("taint", result, out) {
                self.taint = Some(desired.clone());
                if changed {
                    let (step, reason, message) = match desired {
                        Some(value) => (
                            Step::AddTaint {
                                value: value.clone(),
                            },
                            "GpuTaintAdded",
                            format!(
                                "tainted {}={value}:{}",
                                self.config.taint_key,
                                self.config.taint_effect.as_str()
                            ),
                        ),
                        None => (
                            Step::RemoveTaint,
                            "GpuTaintRemoved",
                            format!("removed taint {}", self.config.taint_key),
                        ),
                    };
                    out.steps.push(step);
                    self.event(EventKind::Normal, reason, "Taint", message)
                        .await;
                }
            }
        }
    }

    // === the ladder ===
}
