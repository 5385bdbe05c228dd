//! The remediation lease: acquired before a disruptive step, renewed while it lasts.

use tokio::time::Instant;

use super::episode::Episode;
use super::Remediator;
use crate::actions::LockTicket;
use crate::outcome::{Outcome, Step, Suppressed};

impl Remediator {
    /// Renews the lease when due, or takes one again if it was lost. `false`: none held.
    pub(super) async fn hold_lease(
        &mut self,
        ep: &mut Episode,
        now: Instant,
        out: &mut Outcome,
    ) -> bool {
        let every = self.config.lease_duration.get() / 3;
        if let Some(ticket) = ep.lease.as_mut() {
            if now.duration_since(ep.lease_renewed) < every {
                return true;
            }
            match self.lock.renew(ticket).await {
                Ok(true) => {
                    ep.lease_renewed = now;
                    return true;
                }
                Ok(false) => {
                    tracing::warn!(node = %self.node, lease = %ticket.slot, "remediation lease lost");
                    ep.lease = None;
                }
                Err(e) => {
                    // Still ours until it expires; try again next time.
                    out.errors.push(format!("renew lease: {e}"));
                    return true;
                }
            }
        }
        match self.acquire(now, out).await {
            Some(ticket) => {
                out.steps.push(Step::AcquireLease {
                    slot: ticket.slot.clone(),
                });
                ep.lease = Some(ticket);
                ep.lease_renewed = now;
                true
            }
            None => false,
        }
    }

    /// Takes a lease, asking at most every `recheck_interval` while none is free.
    pub(super) async fn acquire(&mut self, now: Instant, out: &mut Outcome) -> Option<LockTicket> {
        let result = match self.lease_retry_at {
            Some(at) if now < at => Ok(None),
            _ => self.lock.try_acquire().await,
        };
        match result {
            Ok(Some(ticket)) => {
                self.lease_retry_at = None;
                Some(ticket)
            }
            Ok(None) => {
                if self.lease_retry_at.is_none_or(|at| now >= at) {
                    self.lease_retry_at = Some(now + self.config.recheck_interval.get());
                }
                self.metrics.suppressed_lease();
                self.suppress(Suppressed::NoLease, out).await;
                None
            }
            Err(e) => {
                self.lease_retry_at = Some(now + self.config.recheck_interval.get());
                out.errors.push(format!("acquire lease: {e}"));
                None
            }
        }
    }
}
