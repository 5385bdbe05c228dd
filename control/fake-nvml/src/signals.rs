//! Clock-event (throttle) reasons and the PCIe replay counter.

use std::ffi::{c_uint, c_ulonglong};

use nvml_wrapper_sys::bindings::*;

use crate::call::{code, read_device};
use crate::out::put;

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetCurrentClocksThrottleReasons(
    device: nvmlDevice_t,
    reasons: *mut c_ulonglong,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetCurrentClocksThrottleReasons", device, |d| {
        d.throttle_reasons
    });
    // SAFETY: NVML contract: `reasons` is valid for a write.
    code(r.and_then(|b| unsafe { put(reasons, b) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetCurrentClocksEventReasons(
    device: nvmlDevice_t,
    reasons: *mut c_ulonglong,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetCurrentClocksEventReasons", device, |d| {
        d.throttle_reasons
    });
    // SAFETY: NVML contract: `reasons` is valid for a write.
    code(r.and_then(|b| unsafe { put(reasons, b) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetPcieReplayCounter(
    device: nvmlDevice_t,
    value: *mut c_uint,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetPcieReplayCounter", device, |d| {
        d.pcie_replay_count
    });
    // SAFETY: NVML contract: `value` is valid for a write.
    code(r.and_then(|n| unsafe { put(value, n) }))
}
