//! The fleet-wide circuit breaker, and reporting why a step was held back.

use tokio::time::Instant;

use super::Remediator;
use crate::outcome::{Outcome, Suppressed};
use crate::types::EventKind;

impl Remediator {
    /// Reads the fleet (at most every `recheck_interval`); `false` (and an alert when it
    /// opens) while too much of it is unhealthy.
    pub(super) async fn breaker_allows(&mut self, now: Instant, out: &mut Outcome) -> bool {
        let recheck = self.config.recheck_interval.get();
        let fleet = match &self.fleet {
            Some((at, fleet)) if now.duration_since(*at) < recheck => fleet.clone(),
            _ => {
                let fleet = self.actions.fleet_health().await.map_err(|e| e.to_string());
                self.fleet = Some((now, fleet.clone()));
                fleet
            }
        };
        let health = match fleet {
            Ok(Some(health)) => health,
            Ok(None) => return true,
            Err(e) => {
                out.errors.push(format!("read fleet health: {e}"));
                self.metrics.suppressed_breaker();
                self.suppress(Suppressed::FleetUnknown, out).await;
                return false;
            }
        };
        let b = &self.config.breaker;
        let open =
            health.unhealthy >= b.min_unhealthy_nodes && health.share() > b.max_unhealthy_share;
        let tripped = open && !self.breaker_open;
        self.metrics.breaker(open, tripped);
        if tripped {
            tracing::error!(
                node = %self.node,
                "remediation circuit open: {health} (threshold {:.0}%); acting on no node",
                b.max_unhealthy_share * 100.0
            );
            self.event(
                EventKind::Warning,
                "RemediationCircuitOpen",
                "None",
                format!(
                    "{health}, above {:.0}%: a fleet-wide fault is rarely the GPUs; no disruptive remediation until it drops",
                    b.max_unhealthy_share * 100.0
                ),
            )
            .await;
        } else if !open && self.breaker_open {
            tracing::warn!(node = %self.node, "remediation circuit closed: {health}");
            self.event(
                EventKind::Normal,
                "RemediationCircuitClosed",
                "None",
                format!("{health}: remediation resumes"),
            )
            .await;
        }
        self.breaker_open = open;
        if open {
            self.metrics.suppressed_breaker();
            out.suppressed = Some(Suppressed::CircuitOpen(health));
        }
        !open
    }

    // === helpers ===

    /// Records a held-back step; an event the first time in a row.
    pub(super) async fn suppress(&mut self, why: Suppressed, out: &mut Outcome) {
        let kind = std::mem::discriminant(&why);
        if self.last_suppressed != Some(kind) {
            self.last_suppressed = Some(kind);
            let message = match &why {
                Suppressed::Cooldown { remaining } => {
                    format!("in cooldown for another {remaining:?}")
                }
                Suppressed::NoLease => format!(
                    "all {} remediation leases are held by other nodes",
                    self.config.max_concurrent_nodes
                ),
                Suppressed::FleetUnknown => "cannot read the fleet's health".into(),
                Suppressed::Settling { .. } | Suppressed::CircuitOpen(_) => String::new(),
            };
            if !message.is_empty() {
                self.event(
                    EventKind::Normal,
                    "RemediationDeferred",
                    "None",
                    format!("remediation deferred: {message}"),
                )
                .await;
            }
        }
        out.suppressed = Some(why);
    }
}
