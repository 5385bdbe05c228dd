//! Remediation of GPU nodes for `infergate-control`.
//!
//! The control process feeds a [`Remediator`] the policy's per-GPU verdicts for its node
//! ([`GpuVerdict`], converted with `From` from each `infergate_gpu::policy::GpuVerdict`); the
//! remediator keeps the node's `GpuHealthy` condition and taint in line with them at once, and
//! runs the disruptive steps — restart the model-server pod, drain, request a GPU reset or a
//! reboot — under the safety rules: at most K nodes at once cluster-wide (leases), a cooldown
//! per node, an escalation ladder with timeouts, and a fleet-wide circuit breaker. See
//! `docs/remediation.md`.
//!
//! ```no_run
//! # async fn run(verdicts: Vec<infergate_gpu::policy::GpuVerdict>) -> Result<(), infergate_remediate::ActionError> {
//! use infergate_remediate::{GpuVerdict, KubeActions, RemediationConfig, Remediator};
//!
//! let config = RemediationConfig::default();
//! let kube = KubeActions::infer("gpu-node-7", config.clone()).await?;
//! let mut remediator = Remediator::kubernetes(config, kube);
//! let input: Vec<GpuVerdict> = verdicts.iter().map(GpuVerdict::from).collect();
//! let outcome = remediator.observe(&input).await;
//! println!("{:?} {:?}", outcome.state, outcome.steps);
//! # Ok(())
//! # }
//! ```
//!
//! Implementations of the [`NodeActions`] and [`RemediationLock`] seams: [`KubeActions`]
//! (Kubernetes API), [`LocalActions`] + [`LocalLeases`] (log or hook, no cluster), and
//! [`DryRun`] around either.

mod actions;
mod config;
mod dry_run;
mod kube;
mod local;
mod metrics;
mod outcome;
mod remediator;
mod types;

pub use actions::{ActionError, BoxFuture, LockTicket, NodeActions, RemediationLock};
pub use config::{
    BreakerConfig, EvictionConfig, HookConfig, LadderConfig, RemediationConfig, TaintEffect,
};
pub use dry_run::DryRun;
pub use kube::{KubeActions, EVENT_NAMESPACE, FIELD_MANAGER};
pub use local::{run_hook, LocalActions, LocalLeases, LocalLock};
pub use metrics::{MetricsSnapshot, RemediationMetrics};
pub use outcome::{Outcome, Rung, State, Step, Suppressed};
pub use remediator::Remediator;
pub use types::{
    Cause, Cordon, EventKind, EvictionReport, FleetHealth, GpuCondition, GpuVerdict, HostRequest,
    NodeEvent, NodeState, NodeTaint,
};

/// Node annotation marking a cordon as remediation's (value `infergate-control`), so that a
/// restarted control process uncordons it on recovery, and never uncordons anyone else's.
pub const ANNOTATION_CORDONED_BY: &str = "infergate.io/cordoned-by";
/// Node annotation asking the host tooling for `reset-gpu:<gpus>` or `reboot`.
pub const ANNOTATION_REQUESTED_ACTION: &str = "infergate.io/requested-action";
/// When that request was made (RFC 3339); also restores the cooldown after a restart.
pub const ANNOTATION_REQUESTED_AT: &str = "infergate.io/requested-at";
/// The node's `status.nodeInfo.bootID` when a reboot was requested: a different boot ID at
/// start means the reboot happened.
pub const ANNOTATION_REQUESTED_BOOT_ID: &str = "infergate.io/requested-boot-id";
