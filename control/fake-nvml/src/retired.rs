//! Retired pages (dynamic page retirement).

use std::ffi::{c_uint, c_ulonglong};

use nvml_wrapper_sys::bindings::*;

use crate::call::{code, read_device};
use crate::codes::*;
use crate::out::put;
use crate::scenario::Device;

fn retired_count(d: &Device, cause: nvmlPageRetirementCause_t) -> c_uint {
    if cause
        == nvmlPageRetirementCause_enum_NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS
    {
        d.retired_pages.single_bit
    } else {
        d.retired_pages.double_bit
    }
}

/// Fills the retired-page arrays, NVML style: a short buffer answers INSUFFICIENT_SIZE with
/// the needed count.
///
/// # Safety
///
/// `page_count` is null or valid for reads and writes; `addresses` and `timestamps` are null
/// or valid for `*page_count` writes.
unsafe fn fill_retired(
    n: c_uint,
    page_count: *mut c_uint,
    addresses: *mut c_ulonglong,
    timestamps: *mut c_ulonglong,
) -> Result<(), nvmlReturn_t> {
    if page_count.is_null() {
        return Err(INVALID);
    }
    // SAFETY: non-null, valid by the caller's contract.
    let room = unsafe { page_count.read() };
    // SAFETY: as above.
    unsafe { page_count.write(n) };
    if n == 0 {
        return Ok(());
    }
    if room < n {
        return Err(INSUFFICIENT_SIZE);
    }
    for k in 0..n as usize {
        let addr = 0x1000 * (k as c_ulonglong + 1);
        if !addresses.is_null() {
            // SAFETY: `addresses` holds at least `room >= n > k` entries.
            unsafe { addresses.add(k).write(addr) };
        }
        if !timestamps.is_null() {
            // SAFETY: `timestamps` holds at least `room >= n > k` entries.
            unsafe { timestamps.add(k).write(1_700_000_000 + k as c_ulonglong) };
        }
    }
    Ok(())
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetRetiredPages(
    device: nvmlDevice_t,
    cause: nvmlPageRetirementCause_t,
    page_count: *mut c_uint,
    addresses: *mut c_ulonglong,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetRetiredPages", device, |d| {
        retired_count(d, cause)
    });
    // SAFETY: NVML contract for the pointers, as `fill_retired` requires.
    code(r.and_then(|n| unsafe { fill_retired(n, page_count, addresses, std::ptr::null_mut()) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetRetiredPages_v2(
    device: nvmlDevice_t,
    cause: nvmlPageRetirementCause_t,
    page_count: *mut c_uint,
    addresses: *mut c_ulonglong,
    timestamps: *mut c_ulonglong,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetRetiredPages_v2", device, |d| {
        retired_count(d, cause)
    });
    // SAFETY: NVML contract for the pointers, as `fill_retired` requires.
    code(r.and_then(|n| unsafe { fill_retired(n, page_count, addresses, timestamps) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetRetiredPagesPendingStatus(
    device: nvmlDevice_t,
    is_pending: *mut nvmlEnableState_t,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetRetiredPagesPendingStatus", device, |d| {
        if d.retired_pages.pending {
            nvmlEnableState_enum_NVML_FEATURE_ENABLED
        } else {
            nvmlEnableState_enum_NVML_FEATURE_DISABLED
        }
    });
    // SAFETY: NVML contract: `is_pending` is valid for a write.
    code(r.and_then(|p| unsafe { put(is_pending, p) }))
}
