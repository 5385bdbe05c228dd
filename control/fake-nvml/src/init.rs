//! Initialisation and shutdown (reference-counted), and error strings.

use std::ffi::{c_char, c_uint, CStr};

use nvml_wrapper_sys::bindings::*;

use std::sync::Arc;

use crate::codes::*;
use crate::state::load_scenario;
use crate::state::{lock, LIB};
use crate::world::World;

fn init() -> nvmlReturn_t {
    let mut lib = lock(&LIB);
    if lib.refs == 0 {
        let scenario = match load_scenario() {
            Ok(s) => s,
            Err(msg) => {
                eprintln!("infergate-fake-nvml: {msg}");
                return UNKNOWN;
            }
        };
        if let Some(c) = scenario.init_error {
            return c.0;
        }
        lib.world = Some(Arc::new(World::new(scenario)));
    }
    lib.refs += 1;
    SUCCESS
}

#[no_mangle]
pub extern "C" fn nvmlInit_v2() -> nvmlReturn_t {
    init()
}

#[no_mangle]
pub extern "C" fn nvmlInitWithFlags(_flags: c_uint) -> nvmlReturn_t {
    init()
}

#[no_mangle]
pub extern "C" fn nvmlShutdown() -> nvmlReturn_t {
    let mut lib = lock(&LIB);
    if lib.refs == 0 {
        return UNINITIALIZED;
    }
    lib.refs -= 1;
    if lib.refs == 0 {
        lib.world = None;
    }
    SUCCESS
}

#[no_mangle]
pub extern "C" fn nvmlErrorString(result: nvmlReturn_t) -> *const c_char {
    let s: &'static CStr = match result {
        nvmlReturn_enum_NVML_SUCCESS => c"Success",
        nvmlReturn_enum_NVML_ERROR_UNINITIALIZED => c"Uninitialized",
        nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT => c"Invalid Argument",
        nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED => c"Not Supported",
        nvmlReturn_enum_NVML_ERROR_NO_PERMISSION => c"Insufficient Permissions",
        nvmlReturn_enum_NVML_ERROR_NOT_FOUND => c"Not Found",
        nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE => c"Insufficient Size",
        nvmlReturn_enum_NVML_ERROR_DRIVER_NOT_LOADED => c"Driver Not Loaded",
        nvmlReturn_enum_NVML_ERROR_TIMEOUT => c"Timeout",
        nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST => c"GPU is lost",
        nvmlReturn_enum_NVML_ERROR_RESET_REQUIRED => c"GPU requires restart",
        _ => c"Unknown Error",
    };
    s.as_ptr()
}
