//! Starting a remediation, and moving an ongoing one along its ladder.

use tokio::time::Instant;

use super::episode::{Due, Episode};
use super::verdicts::Verdicts;
use super::Remediator;
use crate::outcome::{Outcome, Rung, Step, Suppressed};
use crate::types::EventKind;

impl Remediator {
    pub(super) async fn start(
        &mut self,
        rung: Rung,
        v: &Verdicts,
        since: Instant,
        now: Instant,
        out: &mut Outcome,
    ) {
        if let Some(until) = self.cooldown_until.filter(|u| *u > now) {
            self.metrics.suppressed_cooldown();
            return self
                .suppress(
                    Suppressed::Cooldown {
                        remaining: until - now,
                    },
                    out,
                )
                .await;
        }
        let settle = self.config.breaker.settle_time.get();
        if now.duration_since(since) < settle {
            out.suppressed = Some(Suppressed::Settling {
                remaining: settle - now.duration_since(since),
            });
            return;
        }
        if self.rebooted {
            // A reboot was asked for before this process started, it happened, and the GPUs
            // are still unhealthy: the reboot did not help, the ladder is spent. (A reboot
            // still pending leaves the cooldown, restored from its request time, in force.)
            self.rebooted = false;
            self.exhaust(
                Episode::new(Rung::Reboot, now, None),
                "still unhealthy after the requested reboot",
            )
            .await;
            return;
        }
        if !self.breaker_allows(now, out).await {
            return;
        }
        let Some(ticket) = self.acquire(now, out).await else {
            return;
        };
        self.last_suppressed = None;
        self.metrics.episode_started();
        out.steps.push(Step::AcquireLease {
            slot: ticket.slot.clone(),
        });
        self.event(
            EventKind::Warning,
            "RemediationStarted",
            "AcquireLease",
            format!(
                "remediating GPUs [{}] from rung {} (lease {}): {}",
                v.cause.gpu_list(),
                rung.as_str(),
                ticket.slot,
                v.cause.reason
            ),
        )
        .await;
        let mut ep = Episode::new(rung, now, Some(ticket));
        self.run_rung(&mut ep, v, now, out).await;
        self.episode = Some(ep);
    }

    pub(super) async fn continue_episode(
        &mut self,
        mut ep: Episode,
        v: &Verdicts,
        now: Instant,
        out: &mut Outcome,
    ) {
        if ep.exhausted {
            self.episode = Some(ep);
            return;
        }
        if !self.hold_lease(&mut ep, now, out).await {
            self.episode = Some(ep);
            return;
        }
        // What is due: a higher rung the policy now asks for, the next rung after a timeout,
        // or a retry of incomplete work.
        let asked = Rung::for_action(v.action).filter(|r| *r > ep.rung);
        let timed_out = now.duration_since(ep.rung_started) >= ep.rung.timeout(&self.config.ladder);
        let retry = !ep.rung_done
            && now.duration_since(ep.last_attempt) >= self.config.ladder.retry_interval.get();
        let due = match (asked, timed_out) {
            (Some(r), _) => Some(Due::Escalate(r)),
            (None, true) => Some(ep.rung.next().map_or(Due::Exhaust, Due::Escalate)),
            (None, false) if retry => Some(Due::Retry),
            (None, false) => None,
        };
        let due = match due {
            Some(Due::Exhaust) => {
                let why = format!(
                    "GPUs [{}] still unhealthy {:?} after the {} rung",
                    v.cause.gpu_list(),
                    now.duration_since(ep.rung_started),
                    ep.rung.as_str()
                );
                self.exhaust(ep, &why).await;
                return;
            }
            Some(due) if self.breaker_allows(now, out).await => Some(due),
            _ => None,
        };
        match due {
            Some(Due::Escalate(next)) => {
                let from = ep.rung;
                ep.rung = next;
                ep.rung_started = now;
                ep.rung_done = false;
                out.steps.push(Step::Escalate { from, to: next });
                self.event(
                    EventKind::Warning,
                    "RemediationEscalated",
                    "Escalate",
                    format!(
                        "{} → {}: GPUs [{}] still unhealthy: {}",
                        from.as_str(),
                        next.as_str(),
                        v.cause.gpu_list(),
                        v.cause.reason
                    ),
                )
                .await;
                self.run_rung(&mut ep, v, now, out).await;
            }
            Some(Due::Retry) => self.run_rung(&mut ep, v, now, out).await,
            Some(Due::Exhaust) | None => {}
        }
        self.episode = Some(ep);
    }
}
