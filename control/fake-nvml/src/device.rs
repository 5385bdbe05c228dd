//! Device queries: identity, temperature, power, memory, ECC counts.

use std::ffi::{c_char, c_uint, c_ulonglong};

use nvml_wrapper_sys::bindings::*;

use crate::call::{code, device_call, read_device};
use crate::codes::*;
use crate::out::{put, put_str};

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetIndex(
    device: nvmlDevice_t,
    index: *mut c_uint,
) -> nvmlReturn_t {
    let r = device_call("nvmlDeviceGetIndex", device, |_, gpu| Ok(gpu));
    // SAFETY: NVML contract: `index` is valid for a write.
    code(r.and_then(|i| unsafe { put(index, i) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetUUID(
    device: nvmlDevice_t,
    uuid: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetUUID", device, |d| d.uuid.clone());
    // SAFETY: NVML contract: `uuid` is valid for `length` bytes.
    code(r.and_then(|s| unsafe { put_str(uuid, length, &s) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetName(
    device: nvmlDevice_t,
    name: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetName", device, |d| d.name.clone());
    // SAFETY: NVML contract: `name` is valid for `length` bytes.
    code(r.and_then(|s| unsafe { put_str(name, length, &s) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetTemperature(
    device: nvmlDevice_t,
    sensor_type: nvmlTemperatureSensors_t,
    temp: *mut c_uint,
) -> nvmlReturn_t {
    if sensor_type != nvmlTemperatureSensors_enum_NVML_TEMPERATURE_GPU {
        return INVALID;
    }
    let r = read_device("nvmlDeviceGetTemperature", device, |d| d.temperature_c);
    // SAFETY: NVML contract: `temp` is valid for a write.
    code(r.and_then(|t| unsafe { put(temp, t) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetPowerUsage(
    device: nvmlDevice_t,
    power: *mut c_uint,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetPowerUsage", device, |d| {
        (d.power_w.max(0.0) * 1000.0).round() as c_uint
    });
    // SAFETY: NVML contract: `power` is valid for a write.
    code(r.and_then(|p| unsafe { put(power, p) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo_v2(
    device: nvmlDevice_t,
    memory: *mut nvmlMemory_v2_t,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetMemoryInfo_v2", device, |d| {
        (d.memory_total_bytes, d.memory_used_bytes)
    });
    code(r.and_then(|(total, used)| {
        if memory.is_null() {
            return Err(INVALID);
        }
        // SAFETY: non-null and, by the NVML contract, valid for reads and writes of the
        // struct (the caller set `version`, which is kept).
        let version = unsafe { memory.read() }.version;
        let value = nvmlMemory_v2_t {
            version,
            total,
            reserved: 0,
            free: total.saturating_sub(used),
            used,
        };
        // SAFETY: as above.
        unsafe { put(memory, value) }
    }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo(
    device: nvmlDevice_t,
    memory: *mut nvmlMemory_t,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetMemoryInfo", device, |d| nvmlMemory_t {
        total: d.memory_total_bytes,
        free: d.memory_total_bytes.saturating_sub(d.memory_used_bytes),
        used: d.memory_used_bytes,
    });
    // SAFETY: NVML contract: `memory` is valid for a write.
    code(r.and_then(|m| unsafe { put(memory, m) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetTotalEccErrors(
    device: nvmlDevice_t,
    error_type: nvmlMemoryErrorType_t,
    counter_type: nvmlEccCounterType_t,
    ecc_counts: *mut c_ulonglong,
) -> nvmlReturn_t {
    let uncorrected = error_type == nvmlMemoryErrorType_enum_NVML_MEMORY_ERROR_TYPE_UNCORRECTED;
    let volatile = counter_type == nvmlEccCounterType_enum_NVML_VOLATILE_ECC;
    let r = read_device("nvmlDeviceGetTotalEccErrors", device, |d| {
        match (uncorrected, volatile) {
            (true, true) => d.ecc_volatile_uncorrected,
            (true, false) => d.ecc_aggregate_uncorrected,
            (false, true) => d.ecc_volatile_corrected,
            (false, false) => d.ecc_aggregate_corrected,
        }
    });
    // SAFETY: NVML contract: `ecc_counts` is valid for a write.
    code(r.and_then(|n| unsafe { put(ecc_counts, n) }))
}
