//! System-level calls: versions, the GPU count, device handles.

use std::ffi::{c_char, c_int, c_uint, CStr};

use nvml_wrapper_sys::bindings::*;

use crate::call::{code, enter, handle, system_call};
use crate::codes::*;
use crate::out::{put, put_str};
use crate::state::lock;

#[no_mangle]
pub unsafe extern "C" fn nvmlSystemGetDriverVersion(
    version: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    code(
        system_call("nvmlSystemGetDriverVersion", |w, _| {
            Ok(w.driver_version.clone())
        })
        // SAFETY: NVML contract: `version` is valid for `length` bytes.
        .and_then(|v| unsafe { put_str(version, length, &v) }),
    )
}

#[no_mangle]
pub unsafe extern "C" fn nvmlSystemGetNVMLVersion(
    version: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    code(
        system_call("nvmlSystemGetNVMLVersion", |w, _| {
            Ok(format!("12.{}", w.driver_version))
        })
        // SAFETY: NVML contract: `version` is valid for `length` bytes.
        .and_then(|v| unsafe { put_str(version, length, &v) }),
    )
}

#[no_mangle]
pub unsafe extern "C" fn nvmlSystemGetCudaDriverVersion(version: *mut c_int) -> nvmlReturn_t {
    code(
        system_call("nvmlSystemGetCudaDriverVersion", |_, _| Ok(12040))
            // SAFETY: NVML contract: `version` is valid for a write.
            .and_then(|v| unsafe { put(version, v) }),
    )
}

#[no_mangle]
pub unsafe extern "C" fn nvmlSystemGetCudaDriverVersion_v2(version: *mut c_int) -> nvmlReturn_t {
    // SAFETY: same contract.
    unsafe { nvmlSystemGetCudaDriverVersion(version) }
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetCount_v2(count: *mut c_uint) -> nvmlReturn_t {
    code(
        system_call("nvmlDeviceGetCount_v2", |_, st| {
            c_uint::try_from(st.devices.len()).map_err(|_| UNKNOWN)
        })
        // SAFETY: NVML contract: `count` is valid for a write.
        .and_then(|n| unsafe { put(count, n) }),
    )
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetHandleByIndex_v2(
    index: c_uint,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    let r = (|| {
        let w = enter("nvmlDeviceGetHandleByIndex_v2", Some(index))?;
        let now = w.started.elapsed();
        let mut st = lock(&w.state);
        st.advance(now);
        if index as usize >= st.devices.len() {
            return Err(INVALID);
        }
        if let Some(c) = st.failure("nvmlDeviceGetHandleByIndex_v2", Some(index), now) {
            return Err(c);
        }
        Ok(handle(index))
    })();
    // SAFETY: NVML contract: `device` is valid for a write.
    code(r.and_then(|h| unsafe { put(device, h) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetHandleByUUID(
    uuid: *const c_char,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    if uuid.is_null() {
        return INVALID;
    }
    // SAFETY: NVML contract: `uuid` is a NUL-terminated string.
    let wanted = unsafe { CStr::from_ptr(uuid) }
        .to_string_lossy()
        .into_owned();
    let r = system_call("nvmlDeviceGetHandleByUUID", |_, st| {
        st.devices
            .iter()
            .position(|d| d.uuid == wanted)
            .and_then(|i| u32::try_from(i).ok())
            .map(handle)
            .ok_or(nvmlReturn_enum_NVML_ERROR_NOT_FOUND)
    });
    // SAFETY: NVML contract: `device` is valid for a write.
    code(r.and_then(|h| unsafe { put(device, h) }))
}
