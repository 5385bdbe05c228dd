//! [`Episode`]: one remediation in progress, from its first disruptive step to its end.

use std::time::Duration;

use tokio::time::Instant;

use crate::actions::{LockTicket, RemediationLock};
use crate::outcome::Rung;

#[derive(Debug)]
pub(super) struct Episode {
    pub(super) rung: Rung,
    pub(super) rung_started: Instant,
    /// The rung's work is complete (an eviction held by a PDB leaves it incomplete).
    pub(super) rung_done: bool,
    pub(super) last_attempt: Instant,
    pub(super) lease: Option<LockTicket>,
    pub(super) lease_renewed: Instant,
    pub(super) exhausted: bool,
    pub(super) started: Instant,
}

/// What an ongoing remediation has to do now.
pub(super) enum Due {
    Escalate(Rung),
    Retry,
    Exhaust,
}

impl Episode {
    pub(super) fn new(rung: Rung, now: Instant, lease: Option<LockTicket>) -> Self {
        Episode {
            rung,
            rung_started: now,
            rung_done: false,
            last_attempt: now,
            lease,
            lease_renewed: now,
            exhausted: false,
            started: now,
        }
    }
}

/// Runs `fut`, renewing the lease every `every` meanwhile (a drain may outlast the lease).
pub(super) async fn with_renewal<T>(
    lock: &dyn RemediationLock,
    ticket: Option<&mut LockTicket>,
    renewed: &mut Instant,
    every: Duration,
    fut: impl std::future::Future<Output = T>,
) -> T {
    let Some(ticket) = ticket else {
        return fut.await;
    };
    tokio::pin!(fut);
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    loop {
        tokio::select! {
            out = &mut fut => return out,
            _ = tick.tick() => match lock.renew(ticket).await {
                Ok(true) => *renewed = Instant::now(),
                Ok(false) => tracing::warn!(lease = %ticket.slot, "remediation lease lost during a drain"),
                Err(e) => tracing::warn!(lease = %ticket.slot, "renew lease: {e}"),
            },
        }
    }
}
