//! The end of a remediation: exhausted (a human is needed), or recovered.

use tokio::time::Instant;

use super::episode::Episode;
use super::Remediator;
use crate::outcome::{Outcome, Step};
use crate::types::{Cause, EventKind};

impl Remediator {
    pub(super) async fn exhaust(&mut self, mut ep: Episode, why: &str) {
        ep.exhausted = true;
        if let Some(ticket) = ep.lease.take() {
            if let Err(e) = self.lock.release(ticket).await {
                tracing::warn!(node = %self.node, "release lease: {e}");
            }
        }
        self.metrics.episode_exhausted();
        tracing::error!(node = %self.node, "remediation exhausted: {why}; a human is needed");
        self.event(
            EventKind::Warning,
            "RemediationExhausted",
            "None",
            format!("{why}; the node stays cordoned and tainted: a human is needed"),
        )
        .await;
        self.episode = Some(ep);
    }

    // === recovery ===

    pub(super) async fn recover(&mut self, now: Instant, out: &mut Outcome) {
        let cause = Cause {
            reason: "GPUs recovered".into(),
            ..Cause::default()
        };
        self.last_suppressed = None;
        self.rebooted = false;
        if self.request_pending {
            let result = self.actions.clear_host_request(&cause).await;
            if self.done("clear host request", result, out).is_some() {
                self.request_pending = false;
                out.steps.push(Step::ClearRequest);
                self.event(
                    EventKind::Normal,
                    "HostRequestWithdrawn",
                    "ClearRequest",
                    "GPUs recovered: host request withdrawn".into(),
                )
                .await;
            }
        }
        if self.cordoned_by_us {
            let result = self.actions.uncordon(&cause).await;
            if self.done("uncordon", result, out).is_some() {
                self.cordoned_by_us = false;
                out.steps.push(Step::Uncordon);
                self.event(
                    EventKind::Normal,
                    "NodeUncordoned",
                    "Uncordon",
                    "GPUs recovered: uncordoned".into(),
                )
                .await;
            }
        }
        if let Some(mut ep) = self.episode.take() {
            if let Some(ticket) = ep.lease.take() {
                let slot = ticket.slot.clone();
                match self.lock.release(ticket).await {
                    Ok(()) => out.steps.push(Step::ReleaseLease { slot }),
                    Err(e) => out.errors.push(format!("release lease {slot}: {e}")),
                }
            }
            self.cooldown_until = Some(now + self.config.cooldown.get());
            if !ep.exhausted {
                self.metrics.episode_recovered();
            }
            self.event(
                EventKind::Normal,
                "RemediationRecovered",
                "None",
                format!(
                    "GPUs recovered after {:?} (last rung {}); no new remediation for {}",
                    now.duration_since(ep.started),
                    ep.rung.as_str(),
                    self.config.cooldown
                ),
            )
            .await;
        }
    }

    // === the breaker ===
}
