//! The built-in XID catalogue ([`XID_TABLE`]): what each XID means and what it calls for.

use super::rule::{XidRepeat, XidRule};
use crate::health::{Action, Severity};

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
