//! The two seams of remediation: [`NodeActions`] (what can be done to this node) and
//! [`RemediationLock`] (the cluster-wide cap on nodes under remediation).
//!
//! Both are object-safe (methods return boxed futures), so the control process can pick the
//! implementation at run time: [`KubeActions`](crate::KubeActions),
//! [`LocalActions`](crate::LocalActions), or either wrapped in [`DryRun`](crate::DryRun).

use std::future::Future;
use std::pin::Pin;

use crate::types::{
    Cause, Cordon, EvictionReport, FleetHealth, GpuCondition, HostRequest, NodeEvent, NodeState,
    NodeTaint,
};

/// A boxed, `Send` future: what every trait method returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why an action failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The Kubernetes API refused or could not be reached.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A read-modify-write lost every race.
    #[error("{what}: still conflicting (409) after {attempts} attempts")]
    Conflict { what: String, attempts: u32 },
    /// The local hook could not run or exited with a failure.
    #[error("hook {command}: {detail}")]
    Hook { command: String, detail: String },
    /// Anything else (a bad URL, an unexpected object).
    #[error("{0}")]
    Other(String),
}

/// What can be done to this node. Reads (`node_state`, `fleet_health`) have no side effect;
/// every other method is an action, and [`DryRun`](crate::DryRun) takes none of them.
pub trait NodeActions: Send + Sync {
    /// The node's current state (read at start, to resume after a restart).
    fn node_state(&self) -> BoxFuture<'_, Result<NodeState, ActionError>>;

    /// How many GPU nodes there are and how many are unhealthy; `None` where there is no fleet
    /// to see (local mode), which leaves the breaker closed.
    fn fleet_health(&self) -> BoxFuture<'_, Result<Option<FleetHealth>, ActionError>>;

    /// Sets the GPU condition on the node, touching no other condition.
    fn set_condition<'a>(
        &'a self,
        condition: &'a GpuCondition,
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<(), ActionError>>;

    /// Adds the taint, or updates the value of the one with the same key and effect. Returns
    /// whether the node changed.
    fn add_taint<'a>(
        &'a self,
        taint: &'a NodeTaint,
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<bool, ActionError>>;

    /// Removes every taint with `key`. Returns whether the node changed.
    fn remove_taint<'a>(
        &'a self,
        key: &'a str,
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<bool, ActionError>>;

    /// Marks the node unschedulable.
    fn cordon<'a>(&'a self, cause: &'a Cause) -> BoxFuture<'a, Result<Cordon, ActionError>>;

    /// Marks the node schedulable again (called only when remediation cordoned it).
    fn uncordon<'a>(&'a self, cause: &'a Cause) -> BoxFuture<'a, Result<(), ActionError>>;

    /// Evicts the node's model-server pods through the Eviction API, retrying refusals by a
    /// PodDisruptionBudget with backoff up to the configured deadline, never deleting instead.
    fn evict_pods<'a>(
        &'a self,
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<EvictionReport, ActionError>>;

    /// Deletes the model-server pod(s) on these GPUs so their controller restarts them.
    /// Returns the pods deleted (`namespace/name`).
    fn restart_pods<'a>(
        &'a self,
        gpus: &'a [u32],
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>>;

    /// Asks the host tooling for a GPU reset or a reboot.
    fn request_host_action<'a>(
        &'a self,
        request: &'a HostRequest,
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<(), ActionError>>;

    /// Withdraws a pending host request (on recovery).
    fn clear_host_request<'a>(&'a self, cause: &'a Cause)
        -> BoxFuture<'a, Result<(), ActionError>>;

    /// Records an event about the node.
    fn record_event<'a>(&'a self, event: &'a NodeEvent) -> BoxFuture<'a, Result<(), ActionError>>;
}

/// A held slot of the cluster-wide remediation cap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockTicket {
    /// The slot, e.g. the Lease name `infergate-remediation-0`.
    pub slot: String,
    /// The Lease's `resourceVersion` after the last write (Kubernetes).
    pub resource_version: Option<String>,
}

/// At most K nodes under remediation at once. The holder is fixed at construction (the node).
pub trait RemediationLock: Send + Sync {
    /// Takes a free (or expired, or already ours) slot; `None` when all K are held.
    fn try_acquire(&self) -> BoxFuture<'_, Result<Option<LockTicket>, ActionError>>;

    /// Renews a held slot. `Ok(false)`: it was lost (expired and taken by another node).
    fn renew<'a>(&'a self, ticket: &'a mut LockTicket) -> BoxFuture<'a, Result<bool, ActionError>>;

    /// Gives the slot back.
    fn release(&self, ticket: LockTicket) -> BoxFuture<'_, Result<(), ActionError>>;
}
