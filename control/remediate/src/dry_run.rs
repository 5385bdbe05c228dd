//! [`DryRun`]: logs every action it would take and takes none (`--dry-run`).

use crate::actions::{ActionError, BoxFuture, LockTicket, NodeActions, RemediationLock};
use crate::types::{
    Cause, Cordon, EvictionReport, FleetHealth, GpuCondition, HostRequest, NodeEvent, NodeState,
    NodeTaint,
};

/// Wraps an implementation: reads (`node_state`, `fleet_health`) go through, so the decisions
/// are the real ones, while every action, event and lease write is only logged (target
/// `infergate_remediate::dry_run`, prefix `dry run: would`). As a lock it always grants a slot
/// without touching the cluster, so a dry run never holds up a real remediation elsewhere.
#[derive(Clone, Debug)]
pub struct DryRun<A> {
    inner: A,
}

impl<A> DryRun<A> {
    pub fn new(inner: A) -> Self {
        DryRun { inner }
    }
}

fn would<T: Send + 'static>(
    what: String,
    cause: &Cause,
    value: T,
) -> BoxFuture<'static, Result<T, ActionError>> {
    tracing::info!(
        gpus = %cause.gpu_list(),
        code = %cause.code,
        reason = %cause.reason,
        "dry run: would {what}"
    );
    Box::pin(async move { Ok(value) })
}

impl<A: NodeActions> NodeActions for DryRun<A> {
    fn node_state(&self) -> BoxFuture<'_, Result<NodeState, ActionError>> {
        self.inner.node_state()
    }

    fn fleet_health(&self) -> BoxFuture<'_, Result<Option<FleetHealth>, ActionError>> {
        self.inner.fleet_health()
    }

    fn set_condition<'a>(
        &'a self,
        condition: &'a GpuCondition,
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        let status = if condition.healthy { "True" } else { "False" };
        would(
            format!(
                "set the GPU condition to {status} ({}: {})",
                condition.reason, condition.message
            ),
            cause,
            (),
        )
    }

    fn add_taint<'a>(
        &'a self,
        taint: &'a NodeTaint,
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<bool, ActionError>> {
        would(
            format!(
                "taint the node {}={}:{}",
                taint.key,
                taint.value,
                taint.effect.as_str()
            ),
            cause,
            true,
        )
    }

    fn remove_taint<'a>(
        &'a self,
        key: &'a str,
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<bool, ActionError>> {
        would(format!("remove the taint {key}"), cause, true)
    }

    fn cordon<'a>(&'a self, cause: &'a Cause) -> BoxFuture<'a, Result<Cordon, ActionError>> {
        would("cordon the node".into(), cause, Cordon::Cordoned)
    }

    fn uncordon<'a>(&'a self, cause: &'a Cause) -> BoxFuture<'a, Result<(), ActionError>> {
        would("uncordon the node".into(), cause, ())
    }

    fn evict_pods<'a>(
        &'a self,
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<EvictionReport, ActionError>> {
        would(
            "evict the node's model-server pods".into(),
            cause,
            EvictionReport::default(),
        )
    }

    fn restart_pods<'a>(
        &'a self,
        gpus: &'a [u32],
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>> {
        would(
            format!("restart the model-server pods on GPUs {gpus:?}"),
            cause,
            Vec::new(),
        )
    }

    fn request_host_action<'a>(
        &'a self,
        request: &'a HostRequest,
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        would(
            format!(
                "request {} from the host tooling",
                request.annotation_value()
            ),
            cause,
            (),
        )
    }

    fn clear_host_request<'a>(
        &'a self,
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        would("withdraw the host request".into(), cause, ())
    }

    fn record_event<'a>(&'a self, event: &'a NodeEvent) -> BoxFuture<'a, Result<(), ActionError>> {
        tracing::info!(
            kind = event.kind.as_str(),
            reason = %event.reason,
            action = %event.action,
            "dry run: would record event: {}", event.message
        );
        Box::pin(async { Ok(()) })
    }
}

impl<L: RemediationLock> RemediationLock for DryRun<L> {
    fn try_acquire(&self) -> BoxFuture<'_, Result<Option<LockTicket>, ActionError>> {
        tracing::info!("dry run: would acquire a remediation lease");
        Box::pin(async {
            Ok(Some(LockTicket {
                slot: "dry-run".into(),
                resource_version: None,
            }))
        })
    }

    fn renew<'a>(
        &'a self,
        _ticket: &'a mut LockTicket,
    ) -> BoxFuture<'a, Result<bool, ActionError>> {
        Box::pin(async { Ok(true) })
    }

    fn release(&self, _ticket: LockTicket) -> BoxFuture<'_, Result<(), ActionError>> {
        tracing::info!("dry run: would release the remediation lease");
        Box::pin(async { Ok(()) })
    }
}
