//! Row remapping and field values (`nvmlDeviceGetFieldValues`).

use std::ffi::{c_int, c_uint};

use nvml_wrapper_sys::bindings::*;

use crate::call::{code, read_device};
use crate::codes::*;
use crate::out::{put, unix_us};
use crate::scenario::Device;

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetRemappedRows(
    device: nvmlDevice_t,
    corr_rows: *mut c_uint,
    unc_rows: *mut c_uint,
    is_pending: *mut c_uint,
    failure_occurred: *mut c_uint,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetRemappedRows", device, |d| {
        d.remapped_rows.clone()
    });
    code(r.and_then(|rr| {
        // SAFETY: NVML contract: the four pointers are valid for writes.
        unsafe {
            put(corr_rows, rr.correctable)?;
            put(unc_rows, rr.uncorrectable)?;
            put(is_pending, c_uint::from(rr.pending))?;
            put(failure_occurred, c_uint::from(rr.failure))
        }
    }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetFieldValues(
    device: nvmlDevice_t,
    values_count: c_int,
    values: *mut nvmlFieldValue_t,
) -> nvmlReturn_t {
    let d = match read_device("nvmlDeviceGetFieldValues", device, Device::clone) {
        Ok(d) => d,
        Err(c) => return c,
    };
    let Ok(n) = usize::try_from(values_count) else {
        return INVALID;
    };
    if values.is_null() {
        return INVALID;
    }
    // SAFETY: NVML contract: `values` points to `values_count` initialised field values
    // (their `fieldId` set by the caller), which we own for the duration of the call.
    let values = unsafe { std::slice::from_raw_parts_mut(values, n) };
    let now = unix_us();
    for v in values.iter_mut() {
        let answer = if d.unsupported_fields.contains(&v.fieldId) {
            None
        } else {
            match v.fieldId {
                FI_REMAPPED_COR => Some(d.remapped_rows.correctable),
                FI_REMAPPED_UNC => Some(d.remapped_rows.uncorrectable),
                FI_REMAPPED_PENDING => Some(c_uint::from(d.remapped_rows.pending)),
                FI_REMAPPED_FAILURE => Some(c_uint::from(d.remapped_rows.failure)),
                FI_GPU_RECOVERY_ACTION => Some(d.recovery_action),
                _ => None,
            }
        };
        v.scopeId = 0;
        v.timestamp = now;
        v.latencyUsec = 0;
        v.valueType = nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_INT;
        v.nvmlReturn = if answer.is_some() {
            SUCCESS
        } else {
            NOT_SUPPORTED
        };
        v.value = nvmlValue_t {
            uiVal: answer.unwrap_or(0),
        };
    }
    SUCCESS
}
