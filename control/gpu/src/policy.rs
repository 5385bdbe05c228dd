//! The policy: what a reading means for each GPU (a state and an action).
//!
//! [`PolicyConfig`] is the configuration (every field has a default; see docs/gpu-health.md
//! for the table and its sources). [`Policy`] keeps what must outlive one reading: XIDs seen in
//! the last `xid_window`, PCIe replay counts for the replay rate, consecutive probe timeouts,
//! and the hysteresis that keeps a GPU in its worst recent state until `healthy_reads`
//! consecutive readings say otherwise.
//!
//! Semantics, in order of evaluation for one GPU and one reading:
//!
//! 1. Findings come from the reading (probe failures, ECC, retired pages, row remapping,
//!    temperature, throttling, PCIe replay rate, the driver's recovery action) and from every XID
//!    seen on the GPU within `xid_window` (default 10 min), so one XID keeps producing its
//!    finding for the whole window. A GPU seen before and absent from the reading gets
//!    `gpu_missing`.
//! 2. The raw state is the worst finding's severity. If it is at least the published state,
//!    it is published at once (escalation is immediate). If it is lower, the published state
//!    holds (with a `recovering` finding) until `healthy_reads` consecutive readings are below
//!    it; it then falls to the worst state seen in those readings. An XID 79 therefore keeps its
//!    GPU unhealthy for the window and `healthy_reads` clean readings after it.
//! 3. The action is the strongest action among the findings, except that when the driver
//!    reports a recovery action other than `none` (and `recovery_action.outranks_xid`), the
//!    actions of XID findings are replaced by the driver's (their findings stay, with action
//!    `none`). Actions are level-triggered: they repeat on every evaluation while their finding
//!    lasts; [`GpuVerdict::new_findings`] lists the codes that appeared in this evaluation (new
//!    XID events included) for edge-triggered consumers.
//! 4. A `Degraded` state with an action (row remap pending → `reset_gpu`) means: keep serving,
//!    do it at the next quiet window. `Unhealthy` means: take traffic off now.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;

use infergate_config::units::Dur;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::health::{
    Action, CallFault, Finding, GpuReading, GpuState, NodeReading, RecoveryAction, Severity,
    XidEvent,
};
use crate::probe::ProbeError;

/// A severity and an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub severity: Severity,
    pub action: Action,
}

impl Rule {
    pub const fn new(severity: Severity, action: Action) -> Self {
        Rule { severity, action }
    }
}

/// What an XID means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct XidRule {
    pub severity: Severity,
    pub action: Action,
    /// Escalation when the XID has been seen `count` times within `xid_window`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<XidRepeat>,
}

/// Escalation of an XID that recurs within the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct XidRepeat {
    /// Occurrences within `xid_window` (this one included) from which the escalation applies.
    pub count: u32,
    pub severity: Severity,
    pub action: Action,
}

/// An XID number as a map key: written `13` or `"13"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct XidKey(pub u64);

impl Serialize for XidKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for XidKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = XidKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an XID number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<XidKey, E> {
                Ok(XidKey(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<XidKey, E> {
                u64::try_from(v)
                    .map(XidKey)
                    .map_err(|_| E::custom(format!("XID {v} is negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<XidKey, E> {
                v.trim()
                    .parse()
                    .map(XidKey)
                    .map_err(|_| E::custom(format!("{v:?} is not an XID number")))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for XidKey {
    fn schema_name() -> Cow<'static, str> {
        "XidNumber".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({ "type": "string", "pattern": "^[0-9]+$" })
    }
}

/// Retired pages (dynamic page retirement, before Ampere). DCGM: pending → warn, 63 or more
/// retired pages → fail, more than 15 double-bit retirements → fail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetiredPagesPolicy {
    /// A retirement waits for a GPU reset. Default: degraded, reset at a quiet window.
    pub pending: Rule,
    /// Retired pages (single + double bit) from which `limit` applies. Default 63.
    pub total_limit: u64,
    /// Double-bit retired pages from which `limit` applies. Default 16.
    pub double_bit_limit: u64,
    /// Out of retirement capacity: an RMA candidate. Default: unhealthy, no automatic action
    /// (a reset does not give pages back).
    pub limit: Rule,
}

impl Default for RetiredPagesPolicy {
    fn default() -> Self {
        RetiredPagesPolicy {
            pending: Rule::new(Severity::Degraded, Action::ResetGpu),
            total_limit: 63,
            double_bit_limit: 16,
            limit: Rule::new(Severity::Unhealthy, Action::None),
        }
    }
}

/// Row remapping (Ampere and later).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RowRemapPolicy {
    /// A remapping waits for a GPU reset. Default: degraded, reset at a quiet window.
    pub pending: Rule,
    /// Remapping failed (no spare rows). Default: unhealthy, reset GPU (RMA candidate).
    pub failure: Rule,
    /// Uncorrectable remapped rows from which `uncorrectable` applies. Default 512 (DCGM warn).
    pub uncorrectable_limit: u64,
    /// Default: degraded, no action.
    pub uncorrectable: Rule,
}

impl Default for RowRemapPolicy {
    fn default() -> Self {
        RowRemapPolicy {
            pending: Rule::new(Severity::Degraded, Action::ResetGpu),
            failure: Rule::new(Severity::Unhealthy, Action::ResetGpu),
            uncorrectable_limit: 512,
            uncorrectable: Rule::new(Severity::Degraded, Action::None),
        }
    }
}

/// GPU temperature. A hot GPU is slow, not broken: no action either way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TemperaturePolicy {
    /// Degraded at or above this (°C). Default 85; `null` disables.
    pub degraded_c: Option<u32>,
    /// Unhealthy at or above this (°C). Default 95; `null` disables.
    pub unhealthy_c: Option<u32>,
}

impl Default for TemperaturePolicy {
    fn default() -> Self {
        TemperaturePolicy {
            degraded_c: Some(85),
            unhealthy_c: Some(95),
        }
    }
}

/// Clock-event (throttle) reasons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottlePolicy {
    /// Reason names (nvml-wrapper's `ThrottleReasons` flag names, case-insensitive) that
    /// count. Default: the hardware ones, `HW_SLOWDOWN`, `HW_THERMAL_SLOWDOWN`,
    /// `HW_POWER_BRAKE_SLOWDOWN`.
    pub reasons: Vec<String>,
    /// Default: degraded.
    pub severity: Severity,
    /// Default: none.
    pub action: Action,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            reasons: vec![
                "HW_SLOWDOWN".into(),
                "HW_THERMAL_SLOWDOWN".into(),
                "HW_POWER_BRAKE_SLOWDOWN".into(),
            ],
            severity: Severity::Degraded,
            action: Action::None,
        }
    }
}

/// PCIe replay rate, from the cumulative replay counter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PcieReplayPolicy {
    /// The window the rate is measured over. Default `1m`.
    pub window: Dur,
    /// Degraded when replays per minute exceed this. Default 16 (DCGM's limit for a Gen4 x16
    /// link; Gen5 x16 is 31). `null` disables.
    pub degraded_per_minute: Option<u64>,
    /// Unhealthy when replays per minute exceed this. Default `null` (disabled).
    pub unhealthy_per_minute: Option<u64>,
}

impl Default for PcieReplayPolicy {
    fn default() -> Self {
        PcieReplayPolicy {
            window: Dur::secs(60),
            degraded_per_minute: Some(16),
            unhealthy_per_minute: None,
        }
    }
}

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

/// The GPU health policy's configuration. Every field is optional.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Overrides of the built-in XID table, by XID number, merged over it (an entry replaces
    /// the built-in rule for that XID). To ignore an XID: `{severity: healthy, action: none}`.
    pub xid: BTreeMap<XidKey, XidRule>,
    /// XIDs in neither table. Default: degraded, no action (EKS: a warning event only).
    pub unknown_xid: Rule,
    /// How long an XID keeps producing its finding. Default `10m`.
    pub xid_window: Dur,
    /// Consecutive readings below a GPU's state before the state falls. Default 3.
    pub healthy_reads: u32,
    /// Volatile uncorrected ECC errors > 0 (`ecc_volatile_uncorrected`). Default: unhealthy,
    /// reset GPU (as XID 48; DCGM: volatile DBE > 0 → fail).
    pub ecc_volatile_uncorrected: Rule,
    pub retired_pages: RetiredPagesPolicy,
    pub row_remap: RowRemapPolicy,
    pub temperature: TemperaturePolicy,
    pub throttle: ThrottlePolicy,
    pub pcie_replays: PcieReplayPolicy,
    pub probe: ProbePolicy,
    pub recovery_action: RecoveryActionPolicy,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            xid: BTreeMap::new(),
            unknown_xid: Rule::new(Severity::Degraded, Action::None),
            xid_window: Dur::secs(600),
            healthy_reads: 3,
            ecc_volatile_uncorrected: Rule::new(Severity::Unhealthy, Action::ResetGpu),
            retired_pages: RetiredPagesPolicy::default(),
            row_remap: RowRemapPolicy::default(),
            temperature: TemperaturePolicy::default(),
            throttle: ThrottlePolicy::default(),
            pcie_replays: PcieReplayPolicy::default(),
            probe: ProbePolicy::default(),
            recovery_action: RecoveryActionPolicy::default(),
        }
    }
}

/// One row of the built-in XID table.
#[derive(Clone, Copy, Debug)]
pub struct XidInfo {
    pub xid: u64,
    /// The catalog mnemonic, e.g. `GPU_HAS_FALLEN_OFF_THE_BUS`.
    pub mnemonic: &'static str,
    pub meaning: &'static str,
    pub rule: XidRule,
}

const fn xr(severity: Severity, action: Action) -> XidRule {
    XidRule {
        severity,
        action,
        repeat: None,
    }
}

const fn x(xid: u64, mnemonic: &'static str, meaning: &'static str, rule: XidRule) -> XidInfo {
    XidInfo {
        xid,
        mnemonic,
        meaning,
        rule,
    }
}

use Action::{None as NoAction, RebootNode, ResetGpu, RestartPod};
use Severity::{Degraded, Healthy, Unhealthy};

/// The built-in XID table: the "Ours" column of docs/gpu-health.md, from NVIDIA's XID catalog,
/// the device plugin, DCGM and the EKS node monitoring agent.
pub const XID_TABLE: &[XidInfo] = &[
    x(
        8,
        "FIFO_ERROR_IDLE_TIMEOUT",
        "GPU stopped processing",
        xr(Degraded, RestartPod),
    ),
    x(
        13,
        "GR_EXCEPTION",
        "graphics engine exception (usually the application)",
        xr(Degraded, RestartPod),
    ),
    x(
        31,
        "FIFO_ERROR_MMU_ERR_FLT",
        "GPU memory page fault (usually the application)",
        xr(Degraded, RestartPod),
    ),
    x(
        32,
        "PBDMA_ERROR",
        "corrupted push-buffer stream",
        XidRule {
            severity: Degraded,
            action: RestartPod,
            repeat: Some(XidRepeat {
                count: 2,
                severity: Unhealthy,
                action: ResetGpu,
            }),
        },
    ),
    x(
        43,
        "RESETCHANNEL_VERIF_ERROR",
        "GPU stopped processing (channel killed)",
        xr(Degraded, RestartPod),
    ),
    x(
        45,
        "PREEMPTIVE_REMOVAL",
        "cleanup after a previous error",
        xr(Healthy, NoAction),
    ),
    x(
        46,
        "GPU_TIMEOUT_ERROR",
        "GPU stopped processing",
        xr(Unhealthy, ResetGpu),
    ),
    x(
        48,
        "GPU_ECC_DBE",
        "double-bit ECC error",
        xr(Unhealthy, ResetGpu),
    ),
    x(
        54,
        "AUX_POWER",
        "auxiliary power not connected",
        xr(Unhealthy, NoAction),
    ),
    x(
        61,
        "PMU_BREAKPOINT",
        "internal micro-controller breakpoint",
        xr(Unhealthy, ResetGpu),
    ),
    x(
        62,
        "PMU_HALT_ERROR",
        "internal micro-controller halt",
        xr(Unhealthy, ResetGpu),
    ),
    x(
        63,
        "INFOROM_DRAM_RETIREMENT_EVENT",
        "row remapping recorded, active after a reset",
        xr(Degraded, ResetGpu),
    ),
    x(
        64,
        "INFOROM_DRAM_RETIREMENT_FAILURE",
        "row remapping failure",
        xr(Unhealthy, ResetGpu),
    ),
    x(
        68,
        "NVDEC0_EXCEPTION",
        "video decoder exception",
        xr(Degraded, RestartPod),
    ),
    x(
        69,
        "GR_CLASS_ERROR",
        "graphics engine class error",
        xr(Degraded, RestartPod),
    ),
    x(
        74,
        "NVLINK_ERROR",
        "NVLink error",
        xr(Unhealthy, RebootNode),
    ),
    x(
        79,
        "GPU_HAS_FALLEN_OFF_THE_BUS",
        "GPU has fallen off the bus",
        xr(Unhealthy, RebootNode),
    ),
    x(
        92,
        "EXCESSIVE_SBE_INTERRUPTS",
        "high single-bit ECC error rate",
        xr(Degraded, NoAction),
    ),
    x(
        94,
        "CONTAINED_ERROR",
        "contained memory error",
        xr(Degraded, ResetGpu),
    ),
    x(
        95,
        "UNCONTAINED_ERROR",
        "uncontained memory error",
        xr(Unhealthy, ResetGpu),
    ),
    x(
        109,
        "CTXSW_TIMEOUT_ERROR",
        "context switch timeout",
        xr(Unhealthy, ResetGpu),
    ),
    x(
        110,
        "SEC_FAULT_ERROR",
        "security fault",
        xr(Unhealthy, ResetGpu),
    ),
    x(
        119,
        "GSP_RPC_TIMEOUT",
        "GSP RPC timeout",
        xr(Unhealthy, RebootNode),
    ),
    x(120, "GSP_ERROR", "GSP error", xr(Unhealthy, RebootNode)),
    x(
        121,
        "C2C_ERROR",
        "C2C link error (corrected)",
        xr(Degraded, NoAction),
    ),
    x(
        136,
        "ALI_TRAINING_FAIL",
        "link training failed",
        xr(Unhealthy, ResetGpu),
    ),
    x(
        140,
        "UNRECOVERABLE_ECC_ERROR_ESCAPE",
        "unrecoverable ECC error escape",
        xr(Unhealthy, ResetGpu),
    ),
    x(
        143,
        "GPU_INIT_ERROR",
        "GPU initialisation error",
        xr(Unhealthy, ResetGpu),
    ),
    x(
        144,
        "NVLINK_SAW_ERROR",
        "NVLink5 unit error (SAW)",
        xr(Degraded, NoAction),
    ),
    x(
        145,
        "NVLINK_RLW_ERROR",
        "NVLink5 unit error (RLW)",
        xr(Degraded, NoAction),
    ),
    x(
        146,
        "NVLINK_TLW_ERROR",
        "NVLink5 unit error (TLW)",
        xr(Degraded, NoAction),
    ),
    x(
        147,
        "NVLINK_TREX_ERROR",
        "NVLink5 unit error (TREX)",
        xr(Degraded, NoAction),
    ),
    x(
        148,
        "NVLINK_NVLPW_CTRL_ERROR",
        "NVLink5 unit error (NVLPW_CTRL)",
        xr(Degraded, NoAction),
    ),
    x(
        149,
        "NVLINK_NETIR_ERROR",
        "NVLink5 unit error (NETIR)",
        xr(Degraded, NoAction),
    ),
    x(
        150,
        "NVLINK_MSE_ERROR",
        "NVLink5 unit error (MSE)",
        xr(Degraded, NoAction),
    ),
    x(
        154,
        "GPU_RECOVERY_ACTION_CHANGED",
        "the driver's recovery action changed",
        xr(Degraded, NoAction),
    ),
    x(
        155,
        "NVLINK_SW_DEFINED_ERROR",
        "NVLink software-defined error",
        xr(Unhealthy, ResetGpu),
    ),
    x(
        156,
        "RESOURCE_RETIREMENT_EVENT",
        "resource retirement event",
        xr(Degraded, ResetGpu),
    ),
    x(
        158,
        "GPU_FATAL_TIMEOUT",
        "GPU fatal timeout",
        xr(Unhealthy, ResetGpu),
    ),
];

/// The built-in row for an XID.
pub fn xid_info(xid: u64) -> Option<&'static XidInfo> {
    XID_TABLE.iter().find(|i| i.xid == xid)
}

impl PolicyConfig {
    /// The rule for an XID: the override, else the built-in table, else `unknown_xid`.
    pub fn xid_rule(&self, xid: u64) -> XidRule {
        if let Some(r) = self.xid.get(&XidKey(xid)) {
            return *r;
        }
        match xid_info(xid) {
            Some(info) => info.rule,
            None => XidRule {
                severity: self.unknown_xid.severity,
                action: self.unknown_xid.action,
                repeat: None,
            },
        }
    }

    /// The effective XID table: built-in rows with the overrides merged over them.
    pub fn xid_table(&self) -> BTreeMap<u64, XidRule> {
        let mut t: BTreeMap<u64, XidRule> = XID_TABLE.iter().map(|i| (i.xid, i.rule)).collect();
        for (k, r) in &self.xid {
            t.insert(k.0, *r);
        }
        t
    }
}

/// What the policy concluded about one GPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuVerdict {
    pub index: u32,
    pub uuid: String,
    /// The published state (after hysteresis).
    pub state: Severity,
    /// Everything found, worst first.
    pub findings: Vec<Finding>,
    /// The strongest action among the findings (see the module documentation).
    pub action: Action,
    /// Codes of the findings that were not there at the previous evaluation, and of XIDs
    /// whose events arrived with this reading.
    pub new_findings: Vec<String>,
}

impl GpuVerdict {
    /// The state as published on the health feed.
    pub fn to_gpu_state(&self, read_at_ms: u64) -> GpuState {
        GpuState {
            index: self.index,
            uuid: self.uuid.clone(),
            state: self.state,
            reasons: if self.state == Severity::Healthy {
                Vec::new()
            } else {
                self.findings.iter().map(|f| f.reason.clone()).collect()
            },
            read_at_ms,
        }
    }
}

/// What the policy remembers about one GPU.
#[derive(Debug, Default)]
struct GpuMemory {
    index: u32,
    uuid: String,
    xids: Vec<XidEvent>,
    replays: VecDeque<(u64, u64)>,
    published: Option<Severity>,
    below_streak: u32,
    below_worst: Option<Severity>,
    timeout_streak: u32,
    last_codes: BTreeSet<String>,
}

/// The stateful policy. Feed it every reading of one node, in order.
#[derive(Debug)]
pub struct Policy {
    config: PolicyConfig,
    gpus: BTreeMap<String, GpuMemory>,
    last: Vec<GpuVerdict>,
    last_read_at_ms: u64,
}

fn finding(gpu: u32, code: impl Into<String>, rule: Rule, reason: String) -> Finding {
    Finding {
        gpu,
        code: code.into(),
        severity: rule.severity,
        action: rule.action,
        reason,
    }
}

fn ago(now_ms: u64, at_ms: u64) -> String {
    let s = now_ms.saturating_sub(at_ms) / 1000;
    if s >= 3600 {
        format!("{}h{}m ago", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{}s ago", s / 60, s % 60)
    } else {
        format!("{s}s ago")
    }
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::None => "none",
        Action::RestartPod => "restart_pod",
        Action::ResetGpu => "reset_gpu",
        Action::RebootNode => "reboot_node",
    }
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Healthy => "healthy",
        Severity::Degraded => "degraded",
        Severity::Unhealthy => "unhealthy",
    }
}

fn errors_text(g: &GpuReading) -> String {
    if g.errors.is_empty() {
        String::new()
    } else {
        format!(": {}", g.errors.join("; "))
    }
}

impl Policy {
    pub fn new(config: PolicyConfig) -> Self {
        Policy {
            config,
            gpus: BTreeMap::new(),
            last: Vec::new(),
            last_read_at_ms: 0,
        }
    }

    /// The key a GPU's memory is kept under: its UUID, else the UUID last seen at its index,
    /// else `index:N`.
    fn key_for(&self, g: &GpuReading) -> String {
        if !g.uuid.is_empty() {
            return g.uuid.clone();
        }
        self.gpus
            .iter()
            .find(|(_, m)| m.index == g.index)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| format!("index:{}", g.index))
    }

    /// Evaluates one reading of the node: one verdict per GPU in the reading, plus one per GPU
    /// seen before and missing from it, ordered by index.
    pub fn evaluate(&mut self, reading: &NodeReading) -> Vec<GpuVerdict> {
        let now = reading.read_at_ms;
        let mut seen = BTreeSet::new();
        let mut verdicts = Vec::new();
        for g in &reading.gpus {
            let key = self.key_for(g);
            seen.insert(key.clone());
            let mut mem = self.gpus.remove(&key).unwrap_or_default();
            mem.index = g.index;
            if !g.uuid.is_empty() {
                mem.uuid.clone_from(&g.uuid);
            }
            let (findings, new_xids) = self.findings_for(g, &mut mem, now);
            verdicts.push(self.conclude(&mut mem, findings, new_xids));
            self.gpus.insert(key, mem);
        }
        let missing: Vec<String> = self
            .gpus
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for key in missing {
            let Some(mut mem) = self.gpus.remove(&key) else {
                continue;
            };
            let f = finding(
                mem.index,
                "gpu_missing",
                self.config.probe.missing,
                format!(
                    "GPU {} ({}) is no longer reported by the driver",
                    mem.index, mem.uuid
                ),
            );
            let mut findings = vec![f];
            findings.extend(self.xid_findings(&mut mem, now));
            verdicts.push(self.conclude(&mut mem, findings, BTreeSet::new()));
            self.gpus.insert(key, mem);
        }
        verdicts.sort_by(|a, b| a.index.cmp(&b.index).then_with(|| a.uuid.cmp(&b.uuid)));
        self.last = verdicts.clone();
        self.last_read_at_ms = now;
        verdicts
    }

    /// Evaluates a failed read: every GPU seen before gets a `probe_error` finding (with the
    /// `probe.error` rule) and keeps its remembered XIDs.
    pub fn evaluate_failure(&mut self, error: &ProbeError, read_at_ms: u64) -> Vec<GpuVerdict> {
        let gpus = self
            .gpus
            .values()
            .map(|m| GpuReading {
                index: m.index,
                uuid: m.uuid.clone(),
                errors: vec![error.to_string()],
                faults: vec![CallFault::Error],
                ..GpuReading::default()
            })
            .collect();
        let reading = NodeReading {
            node: String::new(),
            driver_version: None,
            gpus,
            read_at_ms,
        };
        self.evaluate(&reading)
    }

    /// The states of the last evaluation, for the health feed.
    pub fn gpu_states(&self) -> Vec<GpuState> {
        gpu_states(&self.last, self.last_read_at_ms)
    }

    /// Forgets the XIDs remembered for a GPU (after a successful reset or reboot). Its state
    /// still falls only after `healthy_reads` clean readings. Returns whether it was known.
    pub fn clear_xids(&mut self, uuid: &str) -> bool {
        match self.gpus.get_mut(uuid) {
            Some(m) => {
                m.xids.clear();
                true
            }
            None => false,
        }
    }

    /// Forgets a GPU altogether (it was removed on purpose: no more `gpu_missing`).
    pub fn forget_gpu(&mut self, uuid: &str) -> bool {
        self.gpus.remove(uuid).is_some()
    }

    fn findings_for(
        &self,
        g: &GpuReading,
        mem: &mut GpuMemory,
        now: u64,
    ) -> (Vec<Finding>, BTreeSet<String>) {
        let c = &self.config;
        let i = g.index;
        let mut out = Vec::new();

        // Probe failures.
        let faults: Vec<CallFault> = if g.faults.is_empty() && !g.errors.is_empty() {
            vec![CallFault::Error]
        } else {
            g.faults.clone()
        };
        if faults.contains(&CallFault::GpuLost) {
            out.push(finding(
                i,
                "gpu_lost",
                c.probe.gpu_lost,
                format!("the GPU is lost (fallen off the bus){}", errors_text(g)),
            ));
        }
        if faults.contains(&CallFault::Timeout) {
            mem.timeout_streak += 1;
            let mut rule = c.probe.timeout;
            if mem.timeout_streak < c.probe.timeout_action_after {
                rule.action = Action::None;
            }
            out.push(finding(
                i,
                "probe_timeout",
                rule,
                format!(
                    "NVML calls did not answer in time ({} consecutive readings){}",
                    mem.timeout_streak,
                    errors_text(g)
                ),
            ));
        } else {
            mem.timeout_streak = 0;
        }
        if faults.contains(&CallFault::ResetRequired) {
            out.push(finding(
                i,
                "reset_required",
                c.probe.reset_required,
                format!("the GPU requires a reset{}", errors_text(g)),
            ));
        }
        if faults.contains(&CallFault::Error) {
            out.push(finding(
                i,
                "probe_error",
                c.probe.error,
                format!("NVML calls failed{}", errors_text(g)),
            ));
        }

        // XIDs.
        let mut new_xids = BTreeSet::new();
        for ev in &g.xids {
            if !mem
                .xids
                .iter()
                .any(|m| m.xid == ev.xid && m.at_ms == ev.at_ms)
            {
                mem.xids.push(ev.clone());
                new_xids.insert(format!("xid_{}", ev.xid));
            }
        }
        let xid_findings = self.xid_findings(mem, now);

        // Memory.
        if let Some(n) = g.ecc_volatile_uncorrected.filter(|n| *n > 0) {
            out.push(finding(
                i,
                "ecc_volatile_uncorrected",
                c.ecc_volatile_uncorrected,
                format!("{n} uncorrected ECC errors since the driver loaded"),
            ));
        }
        if let Some(rp) = &g.retired_pages {
            let total = rp.single_bit + rp.double_bit;
            if total >= c.retired_pages.total_limit {
                out.push(finding(
                    i,
                    "retired_pages_limit",
                    c.retired_pages.limit,
                    format!(
                        "{total} retired pages (limit {}): replace the GPU",
                        c.retired_pages.total_limit
                    ),
                ));
            } else if rp.double_bit >= c.retired_pages.double_bit_limit {
                out.push(finding(
                    i,
                    "retired_pages_limit",
                    c.retired_pages.limit,
                    format!(
                        "{} pages retired for double-bit errors (limit {}): replace the GPU",
                        rp.double_bit, c.retired_pages.double_bit_limit
                    ),
                ));
            }
            if rp.pending {
                out.push(finding(
                    i,
                    "retired_pages_pending",
                    c.retired_pages.pending,
                    "page retirement pending: takes effect at the next GPU reset".into(),
                ));
            }
        }
        if let Some(rr) = &g.remapped_rows {
            if rr.failure {
                out.push(finding(
                    i,
                    "row_remap_failure",
                    c.row_remap.failure,
                    "row remapping failed: no spare rows left (RMA candidate)".into(),
                ));
            }
            if rr.pending {
                out.push(finding(
                    i,
                    "row_remap_pending",
                    c.row_remap.pending,
                    "row remapping pending: takes effect at the next GPU reset".into(),
                ));
            }
            if rr.uncorrectable >= c.row_remap.uncorrectable_limit {
                out.push(finding(
                    i,
                    "row_remap_uncorrectable",
                    c.row_remap.uncorrectable,
                    format!(
                        "{} rows remapped for uncorrectable errors (limit {})",
                        rr.uncorrectable, c.row_remap.uncorrectable_limit
                    ),
                ));
            }
        }

        // Temperature and throttling.
        if let Some(t) = g.temperature_c {
            let sev = if c.temperature.unhealthy_c.is_some_and(|l| t >= l) {
                Some((Severity::Unhealthy, c.temperature.unhealthy_c))
            } else if c.temperature.degraded_c.is_some_and(|l| t >= l) {
                Some((Severity::Degraded, c.temperature.degraded_c))
            } else {
                None
            };
            if let Some((severity, Some(limit))) = sev {
                out.push(finding(
                    i,
                    "temperature",
                    Rule::new(severity, Action::None),
                    format!("temperature {t} °C (limit {limit} °C)"),
                ));
            }
        }
        let hits: Vec<&String> = g
            .throttle_names
            .iter()
            .filter(|n| c.throttle.reasons.iter().any(|r| r.eq_ignore_ascii_case(n)))
            .collect();
        if !hits.is_empty() && c.throttle.severity > Severity::Healthy {
            out.push(finding(
                i,
                "throttle",
                Rule::new(c.throttle.severity, c.throttle.action),
                format!(
                    "clocks throttled: {}",
                    hits.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }

        // PCIe replay rate.
        if let Some(f) = self.replay_finding(g, mem, now) {
            out.push(f);
        }

        // The driver's recovery action.
        let recovery = g.recovery_action.and_then(|a| {
            let r = &c.recovery_action;
            let (rule, what) = match a {
                RecoveryAction::None => return None,
                RecoveryAction::GpuReset => (r.gpu_reset, "a GPU reset"),
                RecoveryAction::NodeReboot => (r.node_reboot, "a node reboot"),
                RecoveryAction::DrainP2p => (r.drain_p2p, "draining peer-to-peer traffic"),
                RecoveryAction::DrainAndReset => (r.drain_and_reset, "a drain and a GPU reset"),
            };
            Some(finding(
                i,
                "recovery_action",
                rule,
                format!("the driver asks for {what} (NVML_FI_DEV_GET_GPU_RECOVERY_ACTION)"),
            ))
        });
        let driver_decides = recovery.is_some() && c.recovery_action.outranks_xid;
        out.extend(recovery);
        for mut f in xid_findings {
            if driver_decides && f.action != Action::None {
                f.reason = format!(
                    "{} (action {} replaced by the driver's recovery action)",
                    f.reason,
                    action_name(f.action)
                );
                f.action = Action::None;
            }
            out.push(f);
        }
        (out, new_xids)
    }

    /// Findings for the XIDs remembered within the window (expired ones are dropped), one per
    /// XID number.
    fn xid_findings(&self, mem: &mut GpuMemory, now: u64) -> Vec<Finding> {
        let window_ms = u64::try_from(self.config.xid_window.get().as_millis()).unwrap_or(u64::MAX);
        mem.xids.retain(|e| e.at_ms.saturating_add(window_ms) > now);
        let mut by_xid: BTreeMap<u64, (u32, u64)> = BTreeMap::new();
        for e in &mem.xids {
            let entry = by_xid.entry(e.xid).or_insert((0, 0));
            entry.0 += 1;
            entry.1 = entry.1.max(e.at_ms);
        }
        let mut out = Vec::new();
        for (xid, (count, last_at)) in by_xid {
            let rule = self.config.xid_rule(xid);
            let (mut severity, mut action) = (rule.severity, rule.action);
            let mut escalated = false;
            if let Some(rep) = rule.repeat {
                if count >= rep.count {
                    severity = severity.max(rep.severity);
                    action = action.max(rep.action);
                    escalated = true;
                }
            }
            if severity == Severity::Healthy && action == Action::None {
                continue; // ignored XID
            }
            let what = match xid_info(xid) {
                Some(info) => format!("XID {xid} ({}: {})", info.mnemonic, info.meaning),
                None => format!("XID {xid} (not in the table)"),
            };
            let times = if count == 1 {
                "once".to_string()
            } else {
                format!("{count} times")
            };
            out.push(Finding {
                gpu: mem.index,
                code: format!("xid_{xid}"),
                severity,
                action,
                reason: format!(
                    "{what}: {times} in the last {}, last {}{}",
                    self.config.xid_window,
                    ago(now, last_at),
                    if escalated {
                        " (recurring: escalated)"
                    } else {
                        ""
                    }
                ),
            });
        }
        out
    }

    fn replay_finding(&self, g: &GpuReading, mem: &mut GpuMemory, now: u64) -> Option<Finding> {
        let count = g.pcie_replay_count?;
        let window_ms = u64::try_from(self.config.pcie_replays.window.get().as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        if mem.replays.back().is_some_and(|&(_, last)| count < last) {
            mem.replays.clear(); // the counter was reset (driver reload)
        }
        mem.replays.push_back((now, count));
        while mem.replays.len() > 2
            && mem
                .replays
                .get(1)
                .is_some_and(|&(t, _)| t.saturating_add(window_ms) <= now)
        {
            mem.replays.pop_front();
        }
        let &(t0, c0) = mem.replays.front()?;
        if mem.replays.len() < 2 {
            return None;
        }
        let span = now.saturating_sub(t0).max(window_ms);
        let delta = count.saturating_sub(c0);
        let per_minute = delta.saturating_mul(60_000) / span;
        let p = &self.config.pcie_replays;
        let (severity, limit) = if p.unhealthy_per_minute.is_some_and(|l| per_minute > l) {
            (Severity::Unhealthy, p.unhealthy_per_minute)
        } else if p.degraded_per_minute.is_some_and(|l| per_minute > l) {
            (Severity::Degraded, p.degraded_per_minute)
        } else {
            return None;
        };
        Some(finding(
            g.index,
            "pcie_replays",
            Rule::new(severity, Action::None),
            format!(
                "{per_minute} PCIe replays per minute (limit {})",
                limit.unwrap_or(0)
            ),
        ))
    }

    /// Applies hysteresis and picks the action.
    fn conclude(
        &self,
        mem: &mut GpuMemory,
        mut findings: Vec<Finding>,
        new_xids: BTreeSet<String>,
    ) -> GpuVerdict {
        let raw = findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Healthy);
        let published = mem.published.unwrap_or(Severity::Healthy);
        let state = if raw >= published {
            mem.below_streak = 0;
            mem.below_worst = None;
            raw
        } else {
            mem.below_streak += 1;
            let worst = mem.below_worst.unwrap_or(Severity::Healthy).max(raw);
            if mem.below_streak >= self.config.healthy_reads {
                mem.below_streak = 0;
                mem.below_worst = None;
                worst
            } else {
                mem.below_worst = Some(worst);
                findings.push(Finding {
                    gpu: mem.index,
                    code: "recovering".into(),
                    severity: published,
                    action: Action::None,
                    reason: format!(
                        "stays {} until {} consecutive readings are better ({} so far)",
                        severity_name(published),
                        self.config.healthy_reads,
                        mem.below_streak
                    ),
                });
                published
            }
        };
        mem.published = Some(state);
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| b.action.cmp(&a.action))
                .then_with(|| a.code.cmp(&b.code))
        });
        let action = findings
            .iter()
            .map(|f| f.action)
            .max()
            .unwrap_or(Action::None);
        let codes: BTreeSet<String> = findings.iter().map(|f| f.code.clone()).collect();
        let mut new_findings: Vec<String> = codes
            .iter()
            .filter(|c| !mem.last_codes.contains(*c) || new_xids.contains(*c))
            .filter(|c| c.as_str() != "recovering")
            .cloned()
            .collect();
        new_findings.sort();
        mem.last_codes = codes;
        GpuVerdict {
            index: mem.index,
            uuid: mem.uuid.clone(),
            state,
            findings,
            action,
            new_findings,
        }
    }
}

/// The states of a set of verdicts, for the health feed.
pub fn gpu_states(verdicts: &[GpuVerdict], read_at_ms: u64) -> Vec<GpuState> {
    verdicts
        .iter()
        .map(|v| v.to_gpu_state(read_at_ms))
        .collect()
}

/// Mapping from GPU index to verdict, for renderers.
pub(crate) fn by_index(verdicts: &[GpuVerdict]) -> HashMap<u32, &GpuVerdict> {
    verdicts.iter().map(|v| (v.index, v)).collect()
}

#[cfg(test)]
mod tests;
