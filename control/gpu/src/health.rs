//! The vocabulary shared by the probe, the policy, the remediation and the health feed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One XID event reported by the driver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct XidEvent {
    /// GPU index.
    pub gpu: u32,
    pub xid: u64,
    /// Unix time in milliseconds when the probe saw it.
    pub at_ms: u64,
}

/// Row remapping (A100 and later), from NVML.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemappedRows {
    pub correctable: u64,
    pub uncorrectable: u64,
    /// A remapping waits for a GPU reset.
    pub pending: bool,
    /// Remapping failed: the GPU has run out of spare rows.
    pub failure: bool,
}

/// Retired pages (pre-A100 dynamic page retirement), from NVML.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredPages {
    pub single_bit: u64,
    pub double_bit: u64,
    /// A retirement waits for a GPU reset.
    pub pending: bool,
}

/// Everything read from one GPU at one time. A field the GPU or driver does not support is
/// `None`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuReading {
    pub index: u32,
    pub uuid: String,
    pub name: String,
    pub temperature_c: Option<u32>,
    pub power_w: Option<f64>,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    /// Volatile (since the last driver load) uncorrected ECC errors.
    pub ecc_volatile_uncorrected: Option<u64>,
    pub retired_pages: Option<RetiredPages>,
    pub remapped_rows: Option<RemappedRows>,
    /// XIDs seen since the previous reading.
    pub xids: Vec<XidEvent>,
    /// NVML clock-event (throttle) reason bits, and their names.
    pub throttle_reasons: Option<u64>,
    pub throttle_names: Vec<String>,
    /// PCIe replay counter (cumulative).
    pub pcie_replay_count: Option<u64>,
    /// The driver's own recommended recovery action (NVML field
    /// `NVML_FI_DEV_GET_GPU_RECOVERY_ACTION`, newer drivers), when present.
    pub recovery_action: Option<RecoveryAction>,
    /// Calls that failed or did not answer in time, as findings in their own right.
    pub errors: Vec<String>,
    /// What kind of failures `errors` describes, one entry per kind, for the policy (the text
    /// stays in `errors`). Empty when `errors` is empty; a reading with `errors` but no `faults`
    /// (from an older producer) is treated as [`CallFault::Error`].
    #[serde(default)]
    pub faults: Vec<CallFault>,
}

/// How an NVML call on a GPU failed. "Not supported" is not a failure: the field is `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallFault {
    /// The call did not answer within the probe's call timeout (or an earlier call of the same
    /// function on the same GPU still has not answered).
    Timeout,
    /// `NVML_ERROR_GPU_IS_LOST`: the GPU has fallen off the bus or is otherwise inaccessible.
    GpuLost,
    /// `NVML_ERROR_RESET_REQUIRED`: the GPU needs a reset before it can be used again.
    ResetRequired,
    /// Any other failure.
    Error,
}

/// The driver's recommended recovery action (`nvmlDeviceGpuRecoveryAction_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryAction {
    None,
    GpuReset,
    NodeReboot,
    DrainP2p,
    DrainAndReset,
}

/// A reading of every GPU on a node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeReading {
    pub node: String,
    pub driver_version: Option<String>,
    pub gpus: Vec<GpuReading>,
    /// Unix time in milliseconds.
    pub read_at_ms: u64,
}

/// How bad a finding is.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Healthy,
    /// Worth watching; traffic continues.
    Degraded,
    /// Take traffic off the GPU.
    Unhealthy,
}

/// What to do about a finding, in escalating order.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Record only.
    None,
    /// Restart the model-server pod on the GPU (application-level faults).
    RestartPod,
    /// Eject, drain the GPU's workloads and request a GPU reset.
    ResetGpu,
    /// Eject, drain the node and request a reboot.
    RebootNode,
}

/// One thing the policy concluded about one GPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub gpu: u32,
    /// A stable code, e.g. `xid_79`, `ecc_volatile_uncorrected`, `temperature`, `probe_timeout`.
    pub code: String,
    pub severity: Severity,
    pub action: Action,
    /// For people: `XID 79: GPU has fallen off the bus`.
    pub reason: String,
}

/// A GPU's state as published on the health feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuState {
    pub index: u32,
    pub uuid: String,
    pub state: Severity,
    /// The findings behind the state (empty when healthy).
    pub reasons: Vec<String>,
    /// Unix time in milliseconds of the reading.
    pub read_at_ms: u64,
}
