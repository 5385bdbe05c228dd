//! One exported call: waits out a scripted hang, applies the timeline, then answers or fails.

use std::sync::Arc;
use std::time::Duration;

use nvml_wrapper_sys::bindings::*;

use crate::codes::{GPU_IS_LOST, INVALID, NOT_SUPPORTED, SUCCESS, UNINITIALIZED};
use crate::scenario::Device;
use crate::state::{lock, LIB};
use crate::world::{World, WorldState};

pub(crate) fn world() -> Result<Arc<World>, nvmlReturn_t> {
    lock(&LIB).world.clone().ok_or(UNINITIALIZED)
}

/// Blocks while `call` is scripted to hang (no lock held), then returns the world.
pub(crate) fn enter(call: &str, gpu: Option<u32>) -> Result<Arc<World>, nvmlReturn_t> {
    let w = world()?;
    loop {
        let now = w.started.elapsed();
        let hang = lock(&w.state).hang(call, gpu, now);
        match hang {
            None => return Ok(w),
            Some(Some(end)) => std::thread::sleep(end.saturating_sub(now)),
            Some(None) => std::thread::sleep(Duration::from_secs(3600)),
        }
    }
}

/// A system-level call: hangs and failures without `gpu` apply.
pub(crate) fn system_call<T>(
    call: &str,
    f: impl FnOnce(&World, &mut WorldState) -> Result<T, nvmlReturn_t>,
) -> Result<T, nvmlReturn_t> {
    let w = enter(call, None)?;
    let now = w.started.elapsed();
    let mut st = lock(&w.state);
    st.advance(now);
    if let Some(code) = st.failure(call, None, now) {
        return Err(code);
    }
    f(&w, &mut st)
}

pub(crate) fn handle(index: u32) -> nvmlDevice_t {
    std::ptr::without_provenance_mut(index as usize + 1)
}

pub(crate) fn handle_index(device: nvmlDevice_t) -> Result<u32, nvmlReturn_t> {
    match device.addr() {
        0 => Err(INVALID),
        a => u32::try_from(a - 1).map_err(|_| INVALID),
    }
}

/// A call on one device: hangs, `lost`, failures and `unsupported` apply, then `f` answers
/// from the device's current values.
pub(crate) fn device_call<T>(
    call: &str,
    device: nvmlDevice_t,
    f: impl FnOnce(&mut WorldState, u32) -> Result<T, nvmlReturn_t>,
) -> Result<T, nvmlReturn_t> {
    let gpu = handle_index(device)?;
    let w = enter(call, Some(gpu))?;
    let now = w.started.elapsed();
    let mut st = lock(&w.state);
    st.advance(now);
    let dev = st.devices.get(gpu as usize).ok_or(INVALID)?;
    if dev.lost {
        return Err(GPU_IS_LOST);
    }
    let unsupported = dev.unsupported(call);
    if let Some(code) = st.failure(call, Some(gpu), now) {
        return Err(code);
    }
    if unsupported {
        return Err(NOT_SUPPORTED);
    }
    f(&mut st, gpu)
}

/// Answers from a copy of the device's values.
pub(crate) fn read_device<T>(
    call: &str,
    device: nvmlDevice_t,
    f: impl FnOnce(&Device) -> T,
) -> Result<T, nvmlReturn_t> {
    device_call(call, device, |st, gpu| {
        st.devices.get(gpu as usize).map(f).ok_or(INVALID)
    })
}

pub(crate) fn code(r: Result<(), nvmlReturn_t>) -> nvmlReturn_t {
    match r {
        Ok(()) => SUCCESS,
        Err(c) => c,
    }
}
