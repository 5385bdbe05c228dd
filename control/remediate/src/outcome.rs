//! What one [`Remediator::observe`](crate::Remediator::observe) did and decided.

use std::time::Duration;

use infergate_gpu::health::Action;
use serde::Serialize;

use crate::config::LadderConfig;
use crate::types::{EvictionReport, FleetHealth, HostRequest};

/// A rung of the escalation ladder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rung {
    /// Delete the model-server pod(s) on the unhealthy GPUs; their controller restarts them.
    RestartPod,
    /// Cordon, evict the node's model-server pods, then (by default) request a GPU reset.
    Drain,
    /// Cordon and evict if not done yet, then request a reboot.
    Reboot,
}

impl Rung {
    /// The first rung for the policy's action (`None` for `Action::None`).
    pub fn for_action(action: Action) -> Option<Rung> {
        match action {
            Action::None => None,
            Action::RestartPod => Some(Rung::RestartPod),
            Action::ResetGpu => Some(Rung::Drain),
            Action::RebootNode => Some(Rung::Reboot),
        }
    }

    /// The rung above; `None` at the top.
    pub fn next(self) -> Option<Rung> {
        match self {
            Rung::RestartPod => Some(Rung::Drain),
            Rung::Drain => Some(Rung::Reboot),
            Rung::Reboot => None,
        }
    }

    /// How long the GPU may stay unhealthy after this rung before the next one.
    pub fn timeout(self, ladder: &LadderConfig) -> Duration {
        match self {
            Rung::RestartPod => ladder.restart_pod_timeout.get(),
            Rung::Drain => ladder.drain_timeout.get(),
            Rung::Reboot => ladder.reboot_timeout.get(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rung::RestartPod => "restart-pod",
            Rung::Drain => "drain",
            Rung::Reboot => "reboot",
        }
    }
}

/// One action taken (or, under [`DryRun`](crate::DryRun), logged instead).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    SetCondition { healthy: bool },
    AddTaint { value: String },
    RemoveTaint,
    AcquireLease { slot: String },
    RestartPods { pods: Vec<String> },
    Cordon,
    Evict(EvictionReport),
    Request(HostRequest),
    ClearRequest,
    Uncordon,
    ReleaseLease { slot: String },
    Escalate { from: Rung, to: Rung },
}

/// Why a disruptive step that was due was not taken.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Suppressed {
    /// The fault is younger than `breaker.settle_time`.
    Settling { remaining: Duration },
    /// The node was remediated less than `cooldown` ago.
    Cooldown { remaining: Duration },
    /// Too much of the fleet is unhealthy: the breaker is open.
    CircuitOpen(FleetHealth),
    /// The fleet could not be read; the breaker fails closed (no action).
    FleetUnknown,
    /// All K leases are held by other nodes.
    NoLease,
}

/// Where the node stands after an observation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Nothing wrong.
    #[default]
    Healthy,
    /// Something wrong, no remediation running (none asked for, or held back).
    Faulty,
    /// Remediation running at this rung.
    Remediating(Rung),
    /// The ladder ran out; the node stays cordoned and tainted until it recovers or a human acts.
    Exhausted,
}

/// The result of one observation.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Outcome {
    /// Actions taken, in order.
    pub steps: Vec<Step>,
    /// A disruptive step was due and held back.
    pub suppressed: Option<Suppressed>,
    /// Actions that failed (they are retried on later observations).
    pub errors: Vec<String>,
    pub state: State,
}
