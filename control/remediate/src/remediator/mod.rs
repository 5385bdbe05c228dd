//! [`Remediator`]: turns this node's GPU verdicts into actions, under the safety rules.
//!
//! - **Marks first.** The `GpuHealthy` condition and the taint follow the verdicts at once:
//!   they are cheap, reversible, and what schedulers and gateways read.
//! - **Disruptive steps are gated.** Restarting a pod, draining, and asking for a reset or a
//!   reboot start only when the fault has lasted `breaker.settle_time`, the node is out of its
//!   `cooldown`, the fleet breaker is closed, and one of the K remediation leases is ours.
//! - **Ladder.** restart pod → drain (+ GPU reset request) → reboot request. The policy's
//!   action picks the first rung; a rung whose timeout passes with the GPU still unhealthy
//!   gives way to the next; past the top the remediation is exhausted (a human is needed).
//! - **Recovery** (no GPU unhealthy, no action asked): condition `True`, taint removed, host
//!   request withdrawn, uncordon if remediation cordoned, lease released, cooldown starts.
//!
//! Every action is recorded as an event. All timing uses tokio's clock.

mod breaker;
mod build;
mod episode;
mod escalate;
mod lease;
mod marks;
mod recovery;
mod report;
mod rungs;
mod verdicts;

use std::sync::Arc;

use tokio::time::Instant;

use crate::actions::{NodeActions, RemediationLock};
use crate::config::RemediationConfig;
use crate::metrics::RemediationMetrics;
use crate::outcome::{Outcome, Rung, Suppressed};
use crate::types::{FleetHealth, GpuVerdict};
use episode::Episode;
use verdicts::Verdicts;

/// The remediation of one node. Call [`observe`](Remediator::observe) with every new set of
/// verdicts (at least every third of `lease_duration` while remediating); run it in a task of
/// its own, since a drain waits up to `eviction.deadline`.
pub struct Remediator {
    config: RemediationConfig,
    node: String,
    actions: Arc<dyn NodeActions>,
    lock: Arc<dyn RemediationLock>,
    metrics: RemediationMetrics,

    restored: bool,
    /// Found at start: a reboot was requested and has happened (if the GPUs are still
    /// unhealthy, it did not help, and the ladder is spent).
    rebooted: bool,
    /// Last condition written: (healthy, unhealthy GPUs).
    condition: Option<(bool, Vec<u32>)>,
    /// Condition status on the node, to know when it transitions.
    condition_status: Option<bool>,
    /// Taint value on the node (`Some(None)`: known to be absent).
    taint: Option<Option<String>>,
    fault_since: Option<Instant>,
    episode: Option<Episode>,
    cooldown_until: Option<Instant>,
    cordoned_by_us: bool,
    request_pending: bool,
    breaker_open: bool,
    /// The last read of the fleet (or its error), reused for `recheck_interval`.
    fleet: Option<(Instant, Result<Option<FleetHealth>, String>)>,
    /// No lease was free: do not ask again before this.
    lease_retry_at: Option<Instant>,
    /// The last suppression reported by an event, so that each is reported once.
    last_suppressed: Option<std::mem::Discriminant<Suppressed>>,
}

impl Remediator {
    /// Takes one set of verdicts for this node's GPUs (a GPU left out counts as healthy) and
    /// does what the rules allow. Failed actions are in the outcome and retried next time.
    pub async fn observe(&mut self, verdicts: &[GpuVerdict]) -> Outcome {
        let now = Instant::now();
        let mut out = Outcome::default();
        if !self.restored {
            self.restore(now, &mut out).await;
        }
        let v = Verdicts::new(verdicts);
        self.mark(&v, &mut out).await;
        if v.recovered() {
            self.fault_since = None;
            self.recover(now, &mut out).await;
        } else {
            let since = *self.fault_since.get_or_insert(now);
            match self.episode.take() {
                Some(ep) => self.continue_episode(ep, &v, now, &mut out).await,
                None => {
                    if let Some(rung) = Rung::for_action(v.action) {
                        self.start(rung, &v, since, now, &mut out).await;
                    }
                }
            }
        }
        out.state = self.state();
        out
    }

    // === start-up ===
}
