//! Remediation without a cluster: [`LocalActions`] logs each action, or runs a hook command
//! with the finding in its environment; [`LocalLeases`] is the in-process remediation cap.

use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::process::Command;
use tokio::time::Instant;

use crate::actions::{ActionError, BoxFuture, LockTicket, NodeActions, RemediationLock};
use crate::config::HookConfig;
use crate::types::{
    Cause, Cordon, EvictionReport, FleetHealth, GpuCondition, HostRequest, NodeEvent, NodeState,
    NodeTaint,
};

/// Local remediation for one node: every action is logged and, when a hook is configured,
/// runs it with these variables set:
///
/// | variable | value |
/// |---|---|
/// | `INFERGATE_ACTION` | `set-condition`, `add-taint`, `remove-taint`, `cordon`, `uncordon`, `evict`, `restart-pod`, `reset-gpu`, `reboot`, `clear-request` |
/// | `INFERGATE_NODE` | the node name |
/// | `INFERGATE_GPU` | GPU indices, comma-separated (may be empty) |
/// | `INFERGATE_REASON` | the findings' reasons, `; `-separated |
/// | `INFERGATE_CODE` | the findings' codes, comma-separated |
/// | `INFERGATE_DETAIL` | per action: `True`/`False`, the taint, the request |
///
/// The hook is killed after its timeout; a non-zero exit fails the action.
#[derive(Clone, Debug)]
pub struct LocalActions {
    node: String,
    hook: Option<HookConfig>,
}

impl LocalActions {
    pub fn new(node: impl Into<String>, hook: Option<HookConfig>) -> Self {
        LocalActions {
            node: node.into(),
            hook,
        }
    }

    async fn act(&self, action: &str, cause: &Cause, detail: &str) -> Result<(), ActionError> {
        tracing::info!(
            node = %self.node,
            action,
            gpus = %cause.gpu_list(),
            code = %cause.code,
            reason = %cause.reason,
            detail,
            "remediation action"
        );
        let Some(hook) = &self.hook else {
            return Ok(());
        };
        run_hook(hook, action, &self.node, cause, detail).await
    }
}

/// Runs the hook once; its output goes to the log.
pub async fn run_hook(
    hook: &HookConfig,
    action: &str,
    node: &str,
    cause: &Cause,
    detail: &str,
) -> Result<(), ActionError> {
    let command = hook.command.join(" ");
    let fail = |detail: String| ActionError::Hook {
        command: command.clone(),
        detail,
    };
    let Some((program, args)) = hook.command.split_first() else {
        return Err(fail("no command".into()));
    };
    let child = Command::new(program)
        .args(args)
        .env("INFERGATE_ACTION", action)
        .env("INFERGATE_NODE", node)
        .env("INFERGATE_GPU", cause.gpu_list())
        .env("INFERGATE_REASON", &cause.reason)
        .env("INFERGATE_CODE", &cause.code)
        .env("INFERGATE_DETAIL", detail)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot start: {e}")))?;
    let timeout = hook.timeout.get();
    // On timeout the future is dropped, and with it the child, which `kill_on_drop` kills.
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| fail(format!("killed after {timeout:?}")))?
        .map_err(|e| fail(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    tracing::info!(action, %command, status = %output.status, stdout = %stdout.trim(), stderr = %stderr.trim(), "hook ran");
    if output.status.success() {
        Ok(())
    } else {
        Err(fail(format!("{}: {}", output.status, stderr.trim())))
    }
}

impl NodeActions for LocalActions {
    fn node_state(&self) -> BoxFuture<'_, Result<NodeState, ActionError>> {
        Box::pin(async { Ok(NodeState::default()) })
    }

    fn fleet_health(&self) -> BoxFuture<'_, Result<Option<FleetHealth>, ActionError>> {
        Box::pin(async { Ok(None) })
    }

    fn set_condition<'a>(
        &'a self,
        condition: &'a GpuCondition,
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        let status = if condition.healthy { "True" } else { "False" };
        Box::pin(self.act("set-condition", cause, status))
    }

    fn add_taint<'a>(
        &'a self,
        taint: &'a NodeTaint,
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<bool, ActionError>> {
        Box::pin(async move {
            let detail = format!("{}={}:{}", taint.key, taint.value, taint.effect.as_str());
            self.act("add-taint", cause, &detail).await.map(|()| true)
        })
    }

    fn remove_taint<'a>(
        &'a self,
        key: &'a str,
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<bool, ActionError>> {
        Box::pin(async move { self.act("remove-taint", cause, key).await.map(|()| true) })
    }

    fn cordon<'a>(&'a self, cause: &'a Cause) -> BoxFuture<'a, Result<Cordon, ActionError>> {
        Box::pin(async move {
            self.act("cordon", cause, "")
                .await
                .map(|()| Cordon::Cordoned)
        })
    }

    fn uncordon<'a>(&'a self, cause: &'a Cause) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(self.act("uncordon", cause, ""))
    }

    fn evict_pods<'a>(
        &'a self,
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<EvictionReport, ActionError>> {
        Box::pin(async move {
            self.act("evict", cause, "")
                .await
                .map(|()| EvictionReport::default())
        })
    }

    fn restart_pods<'a>(
        &'a self,
        gpus: &'a [u32],
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>> {
        Box::pin(async move {
            let detail = crate::types::join_gpus(gpus, ",");
            self.act("restart-pod", cause, &detail)
                .await
                .map(|()| Vec::new())
        })
    }

    fn request_host_action<'a>(
        &'a self,
        request: &'a HostRequest,
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        let action = match request {
            HostRequest::ResetGpu { .. } => "reset-gpu",
            HostRequest::Reboot => "reboot",
        };
        Box::pin(async move { self.act(action, cause, &request.annotation_value()).await })
    }

    fn clear_host_request<'a>(
        &'a self,
        cause: &'a Cause,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(self.act("clear-request", cause, ""))
    }

    fn record_event<'a>(&'a self, event: &'a NodeEvent) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            tracing::info!(
                node = %self.node,
                kind = event.kind.as_str(),
                reason = %event.reason,
                action = %event.action,
                "{}", event.message
            );
            Ok(())
        })
    }
}

/// Each slot: its holder and when its hold expires.
type Slots = Vec<Option<(String, Instant)>>;

/// The remediation cap without a cluster: K in-process slots that expire like leases (on
/// tokio's clock). Clones share the slots; [`LocalLeases::lock_for`] gives one holder's view.
#[derive(Clone, Debug)]
pub struct LocalLeases {
    slots: Arc<Mutex<Slots>>,
    duration: Duration,
}

impl LocalLeases {
    pub fn new(slots: u32, duration: Duration) -> Self {
        LocalLeases {
            slots: Arc::new(Mutex::new(vec![None; slots as usize])),
            duration,
        }
    }

    /// The lock as seen by `holder`.
    pub fn lock_for(&self, holder: impl Into<String>) -> LocalLock {
        LocalLock {
            leases: self.clone(),
            holder: holder.into(),
        }
    }

    /// Holders of the slots now (expired ones count as free).
    pub fn holders(&self) -> Vec<Option<String>> {
        let now = Instant::now();
        self.slots()
            .iter()
            .map(|s| match s {
                Some((h, until)) if *until > now => Some(h.clone()),
                _ => None,
            })
            .collect()
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One holder's handle on [`LocalLeases`].
#[derive(Clone, Debug)]
pub struct LocalLock {
    leases: LocalLeases,
    holder: String,
}

impl RemediationLock for LocalLock {
    fn try_acquire(&self) -> BoxFuture<'_, Result<Option<LockTicket>, ActionError>> {
        Box::pin(async move {
            let now = Instant::now();
            let until = now + self.leases.duration;
            let mut slots = self.leases.slots();
            let ours = slots
                .iter()
                .position(|s| matches!(s, Some((h, _)) if *h == self.holder));
            let free = || {
                slots
                    .iter()
                    .position(|s| s.as_ref().is_none_or(|(_, t)| *t <= now))
            };
            let Some(i) = ours.or_else(free) else {
                return Ok(None);
            };
            slots[i] = Some((self.holder.clone(), until));
            Ok(Some(LockTicket {
                slot: format!("local-{i}"),
                resource_version: None,
            }))
        })
    }

    fn renew<'a>(&'a self, ticket: &'a mut LockTicket) -> BoxFuture<'a, Result<bool, ActionError>> {
        Box::pin(async move {
            let now = Instant::now();
            let mut slots = self.leases.slots();
            let slot = slot_index(ticket).and_then(|i| slots.get_mut(i));
            match slot {
                Some(Some((h, until))) if *h == self.holder && *until > now => {
                    *until = now + self.leases.duration;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
    }

    fn release(&self, ticket: LockTicket) -> BoxFuture<'_, Result<(), ActionError>> {
        Box::pin(async move {
            let mut slots = self.leases.slots();
            if let Some(slot) = slot_index(&ticket).and_then(|i| slots.get_mut(i)) {
                if matches!(slot, Some((h, _)) if *h == self.holder) {
                    *slot = None;
                }
            }
            Ok(())
        })
    }
}

fn slot_index(ticket: &LockTicket) -> Option<usize> {
    ticket.slot.strip_prefix("local-")?.parse().ok()
}
