//! Writing answers through the caller's pointers, and the clock events are stamped with.

use std::ffi::{c_char, c_uint};
use std::time::{SystemTime, UNIX_EPOCH};

use nvml_wrapper_sys::bindings::*;

use crate::codes::{INSUFFICIENT_SIZE, INVALID};

/// # Safety
///
/// `ptr` is null or valid for a write of `T`.
pub(crate) unsafe fn put<T>(ptr: *mut T, v: T) -> Result<(), nvmlReturn_t> {
    if ptr.is_null() {
        return Err(INVALID);
    }
    // SAFETY: non-null, and valid for a write of T by the caller's contract.
    unsafe { ptr.write(v) };
    Ok(())
}

/// Writes `s` and a NUL to the C buffer `buf` of `len` bytes.
///
/// # Safety
///
/// `buf` is null or valid for writes of `len` bytes.
pub(crate) unsafe fn put_str(buf: *mut c_char, len: c_uint, s: &str) -> Result<(), nvmlReturn_t> {
    if buf.is_null() {
        return Err(INVALID);
    }
    let bytes = s.as_bytes();
    if bytes.len() >= len as usize {
        return Err(INSUFFICIENT_SIZE);
    }
    // SAFETY: `buf` is valid for `len` bytes and we write `bytes.len() + 1 <= len` of them;
    // the source is a distinct Rust string.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), buf, bytes.len());
        buf.add(bytes.len()).write(0);
    }
    Ok(())
}

pub(crate) fn unix_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
