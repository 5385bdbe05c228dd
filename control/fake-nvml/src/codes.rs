//! NVML return codes, the event types a device supports, and the field ids answered.

use std::ffi::c_ulonglong;

use nvml_wrapper_sys::bindings::*;

pub(crate) const SUCCESS: nvmlReturn_t = nvmlReturn_enum_NVML_SUCCESS;
pub(crate) const INVALID: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
pub(crate) const NOT_SUPPORTED: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
pub(crate) const UNINITIALIZED: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
pub(crate) const INSUFFICIENT_SIZE: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE;
pub(crate) const GPU_IS_LOST: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST;
pub(crate) const TIMEOUT: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_TIMEOUT;
pub(crate) const UNKNOWN: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_UNKNOWN;

/// Event types a device supports (only XIDs are ever delivered).
pub(crate) const SUPPORTED_EVENTS: c_ulonglong = (nvmlEventTypeSingleBitEccError
    | nvmlEventTypeDoubleBitEccError
    | nvmlEventTypePState
    | nvmlEventTypeXidCriticalError
    | nvmlEventTypeClock) as c_ulonglong;

pub(crate) const FI_REMAPPED_COR: u32 = 142;
pub(crate) const FI_REMAPPED_UNC: u32 = 143;
pub(crate) const FI_REMAPPED_PENDING: u32 = 144;
pub(crate) const FI_REMAPPED_FAILURE: u32 = 145;
pub(crate) const FI_GPU_RECOVERY_ACTION: u32 = 230;
