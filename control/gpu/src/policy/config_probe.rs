//! The configuration of the findings about the probe itself and the driver's recovery action.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rule::Rule;
use crate::health::{Action, Severity};

/// Failures of the probe itself on one GPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ProbePolicy {
    /// An NVML call did not answer in time (`probe_timeout`). Treated like XID 119 (driver or
    /// GSP wedged). Default: unhealthy, reboot node.
    pub timeout: Rule,
    /// `timeout.action` applies from this many consecutive readings with a timeout; before,
    /// the finding has action `none` (one slow call takes traffic off but reboots nothing).
    /// Default 3.
    pub timeout_action_after: u32,
    /// Any other failed call (`probe_error`). Default: unhealthy, no action.
    pub error: Rule,
    /// `NVML_ERROR_GPU_IS_LOST` (`gpu_lost`): the XID 79 path. Default: unhealthy, reboot node.
    pub gpu_lost: Rule,
    /// `NVML_ERROR_RESET_REQUIRED` (`reset_required`). Default: unhealthy, reset GPU.
    pub reset_required: Rule,
    /// A GPU seen before is no longer reported (`gpu_missing`): the XID 79 path. Default:
    /// unhealthy, reboot node.
    pub missing: Rule,
}

impl Default for ProbePolicy {
    fn default() -> Self {
        ProbePolicy {
            timeout: Rule::new(Severity::Unhealthy, Action::RebootNode),
            timeout_action_after: 3,
            error: Rule::new(Severity::Unhealthy, Action::None),
            gpu_lost: Rule::new(Severity::Unhealthy, Action::RebootNode),
            reset_required: Rule::new(Severity::Unhealthy, Action::ResetGpu),
            missing: Rule::new(Severity::Unhealthy, Action::RebootNode),
        }
    }
}

/// The driver's recovery action (`NVML_FI_DEV_GET_GPU_RECOVERY_ACTION`, field 230).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RecoveryActionPolicy {
    /// When the driver asks for something, its action replaces the actions of XID findings.
    /// Default true.
    pub outranks_xid: bool,
    /// Default: unhealthy, reset GPU.
    pub gpu_reset: Rule,
    /// Default: unhealthy, reboot node.
    pub node_reboot: Rule,
    /// Default: degraded, restart the pod. NVIDIA: terminate the processes doing
    /// peer-to-peer traffic, then read the field again (it then names another action);
    /// DCGM: warn.
    pub drain_p2p: Rule,
    /// Default: unhealthy, reset GPU (drain first: our reset drains).
    pub drain_and_reset: Rule,
}

impl Default for RecoveryActionPolicy {
    fn default() -> Self {
        RecoveryActionPolicy {
            outranks_xid: true,
            gpu_reset: Rule::new(Severity::Unhealthy, Action::ResetGpu),
            node_reboot: Rule::new(Severity::Unhealthy, Action::RebootNode),
            drain_p2p: Rule::new(Severity::Degraded, Action::RestartPod),
            drain_and_reset: Rule::new(Severity::Unhealthy, Action::ResetGpu),
        }
    }
}
