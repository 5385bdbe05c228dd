//! The data passed to and returned by [`NodeActions`](crate::NodeActions): the input verdicts,
//! what each action needs, and what the node and the fleet look like.

use std::fmt;
use std::time::SystemTime;

use infergate_gpu::health::{Action, Severity};
use serde::{Deserialize, Serialize};

use crate::config::TaintEffect;

/// One GPU's verdict from the policy, the input of [`Remediator::observe`](crate::Remediator::observe).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuVerdict {
    pub gpu: u32,
    pub severity: Severity,
    /// What the policy asks for; it sets the ladder's first rung.
    pub action: Action,
    /// For people, e.g. `XID 79: GPU has fallen off the bus`.
    pub reasons: Vec<String>,
    /// Stable codes, e.g. `xid_79`.
    pub codes: Vec<String>,
}

impl GpuVerdict {
    /// A healthy GPU with nothing to do.
    pub fn healthy(gpu: u32) -> Self {
        GpuVerdict {
            gpu,
            severity: Severity::Healthy,
            action: Action::None,
            reasons: Vec::new(),
            codes: Vec::new(),
        }
    }
}

impl From<&infergate_gpu::policy::GpuVerdict> for GpuVerdict {
    /// The policy's verdict for one GPU: its published state, its action, and the reasons and
    /// codes of its findings.
    fn from(v: &infergate_gpu::policy::GpuVerdict) -> Self {
        GpuVerdict {
            gpu: v.index,
            severity: v.state,
            action: v.action,
            reasons: v.findings.iter().map(|f| f.reason.clone()).collect(),
            codes: v.findings.iter().map(|f| f.code.clone()).collect(),
        }
    }
}

/// Why an action is taken: the GPUs concerned and the finding, for events and hooks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    /// GPU indices, ascending.
    pub gpus: Vec<u32>,
    /// Codes of the findings, comma-separated (`xid_79,ecc_volatile_uncorrected`).
    pub code: String,
    /// Reasons for people, `; `-separated.
    pub reason: String,
}

impl Cause {
    /// `0,1,3`
    pub fn gpu_list(&self) -> String {
        join_gpus(&self.gpus, ",")
    }
}

pub(crate) fn join_gpus(gpus: &[u32], sep: &str) -> String {
    gpus.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

/// The node condition to set (type from the config).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuCondition {
    /// Status `True` when healthy, `False` otherwise.
    pub healthy: bool,
    /// CamelCase, e.g. `GpuUnhealthy`.
    pub reason: String,
    pub message: String,
    /// The status differs from the one on the node: set `lastTransitionTime`.
    pub transition: bool,
}

/// A taint on the node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeTaint {
    pub key: String,
    pub value: String,
    pub effect: TaintEffect,
}

/// A request for the operator's host tooling, as a node annotation
/// `infergate.io/requested-action` (Kubernetes) or a hook run (local).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostRequest {
    /// Reset these GPUs (`nvidia-smi -r`); the node's model-server pods are already evicted.
    ResetGpu { gpus: Vec<u32> },
    /// Reboot the node; its model-server pods are already evicted.
    Reboot,
}

impl HostRequest {
    /// `reset-gpu:0,1` or `reboot`: the annotation value.
    pub fn annotation_value(&self) -> String {
        match self {
            HostRequest::ResetGpu { gpus } => format!("reset-gpu:{}", join_gpus(gpus, ",")),
            HostRequest::Reboot => "reboot".into(),
        }
    }
}

/// `Normal` or `Warning`, as in a Kubernetes Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Normal,
    Warning,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Normal => "Normal",
            EventKind::Warning => "Warning",
        }
    }
}

/// An event about the node, recorded for every action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEvent {
    pub kind: EventKind,
    /// CamelCase, machine-readable: `RemediationCircuitOpen`, `PodRestarted`.
    pub reason: String,
    /// What was done: `Cordon`, `Evict`, `RequestReboot`, `None`.
    pub action: String,
    pub message: String,
}

/// What the node looks like, read once at start so that state survives a restart of the
/// control process (and the reboot it may have asked for).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeState {
    pub unschedulable: bool,
    /// Cordoned by remediation (annotation `infergate.io/cordoned-by`).
    pub cordoned_by_us: bool,
    /// Status of the GPU condition, if present.
    pub condition_healthy: Option<bool>,
    /// Value of our taint, if present.
    pub taint_value: Option<String>,
    /// A pending `infergate.io/requested-action`.
    pub requested_action: Option<String>,
    /// When it was requested (`infergate.io/requested-at`).
    pub requested_at: Option<SystemTime>,
    /// `status.nodeInfo.bootID` now.
    pub boot_id: Option<String>,
    /// The boot ID when a reboot was requested (`infergate.io/requested-boot-id`).
    pub requested_boot_id: Option<String>,
}

impl NodeState {
    /// A reboot was requested and the node has rebooted since.
    pub fn rebooted_since_request(&self) -> bool {
        self.requested_action.as_deref() == Some("reboot")
            && self.requested_boot_id.is_some()
            && self.boot_id.is_some()
            && self.requested_boot_id != self.boot_id
    }
}

/// The GPU fleet as the breaker sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetHealth {
    /// Nodes matching the GPU node selector.
    pub gpu_nodes: u32,
    /// Of those, with the GPU condition `False`.
    pub unhealthy: u32,
}

impl FleetHealth {
    pub fn share(&self) -> f64 {
        if self.gpu_nodes == 0 {
            0.0
        } else {
            f64::from(self.unhealthy) / f64::from(self.gpu_nodes)
        }
    }
}

impl fmt::Display for FleetHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} GPU nodes unhealthy ({:.0}%)",
            self.unhealthy,
            self.gpu_nodes,
            self.share() * 100.0
        )
    }
}

/// What a cordon found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cordon {
    /// Cordoned now, and marked as ours.
    Cordoned,
    /// Already cordoned by us (before a restart).
    AlreadyOurs,
    /// Already cordoned by someone else: left as it is, and not uncordoned on recovery.
    AlreadyCordoned,
}

/// The result of evicting the node's model-server pods.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvictionReport {
    /// `namespace/name` of pods evicted (or already gone).
    pub evicted: Vec<String>,
    /// Still refused by a PodDisruptionBudget (429) at the deadline.
    pub blocked: Vec<String>,
    /// Failed otherwise, with the error.
    pub failed: Vec<(String, String)>,
}

impl EvictionReport {
    /// Every pod is gone: the node's GPUs are free.
    pub fn complete(&self) -> bool {
        self.blocked.is_empty() && self.failed.is_empty()
    }
}
