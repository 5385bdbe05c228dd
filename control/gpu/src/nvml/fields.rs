//! NVML field values (`nvmlDeviceGetFieldValues`): the ids read and their values.

use nvml_wrapper::enums::device::SampleValue;

use crate::health::RecoveryAction;

/// NVML field ids read with `nvmlDeviceGetFieldValues` (nvml.h).
pub(super) const FI_REMAPPED_COR: u32 = 142;
pub(super) const FI_REMAPPED_UNC: u32 = 143;
pub(super) const FI_REMAPPED_PENDING: u32 = 144;
pub(super) const FI_REMAPPED_FAILURE: u32 = 145;
pub(super) const FI_GPU_RECOVERY_ACTION: u32 = 230;

pub(super) fn field_name(id: u32) -> &'static str {
    match id {
        FI_REMAPPED_COR => "NVML_FI_DEV_REMAPPED_COR",
        FI_REMAPPED_UNC => "NVML_FI_DEV_REMAPPED_UNC",
        FI_REMAPPED_PENDING => "NVML_FI_DEV_REMAPPED_PENDING",
        FI_REMAPPED_FAILURE => "NVML_FI_DEV_REMAPPED_FAILURE",
        FI_GPU_RECOVERY_ACTION => "NVML_FI_DEV_GET_GPU_RECOVERY_ACTION",
        _ => "nvmlDeviceGetFieldValues",
    }
}

pub(super) fn sample_u64(v: &SampleValue) -> u64 {
    match *v {
        SampleValue::U32(x) => u64::from(x),
        SampleValue::U64(x) => x,
        SampleValue::I64(x) => u64::try_from(x).unwrap_or(0),
        SampleValue::F64(x) if x.is_finite() && x > 0.0 => x as u64,
        SampleValue::F64(_) => 0,
    }
}

/// `nvmlDeviceGpuRecoveryAction_t`. Newer headers add 5 (RECOVER_IMEX_DOMAIN), 6 (BUS_RESET)
/// and 7 (SYSTEM_REBOOT): a bus reset or system reboot needs more than a GPU reset, so both
/// are reported as `NodeReboot`; 5 and unknown values are reported as errors.
pub(super) fn recovery_action(v: u64) -> Option<RecoveryAction> {
    match v {
        0 => Some(RecoveryAction::None),
        1 => Some(RecoveryAction::GpuReset),
        2 | 6 | 7 => Some(RecoveryAction::NodeReboot),
        3 => Some(RecoveryAction::DrainP2p),
        4 => Some(RecoveryAction::DrainAndReset),
        _ => None,
    }
}
