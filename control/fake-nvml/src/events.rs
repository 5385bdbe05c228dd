//! Event sets: XIDs from the timeline, delivered to the sets registered for the GPU.

use std::ffi::{c_uint, c_ulonglong};

use nvml_wrapper_sys::bindings::*;

use crate::call::{code, device_call, enter, handle, read_device, system_call};
use std::time::{Duration, Instant};

use crate::codes::*;
use crate::out::put;
use crate::state::lock;
use crate::world::EventSet;

fn set_handle(id: usize) -> nvmlEventSet_t {
    std::ptr::without_provenance_mut(id)
}

#[no_mangle]
pub unsafe extern "C" fn nvmlEventSetCreate(set: *mut nvmlEventSet_t) -> nvmlReturn_t {
    let r = system_call("nvmlEventSetCreate", |_, st| {
        let id = st.next_set;
        st.next_set += 1;
        st.sets.insert(id, EventSet::default());
        Ok(set_handle(id))
    });
    // SAFETY: NVML contract: `set` is valid for a write.
    code(r.and_then(|h| unsafe { put(set, h) }))
}

#[no_mangle]
pub extern "C" fn nvmlEventSetFree(set: nvmlEventSet_t) -> nvmlReturn_t {
    code(system_call("nvmlEventSetFree", |_, st| {
        st.sets.remove(&set.addr()).map(|_| ()).ok_or(INVALID)
    }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetSupportedEventTypes(
    device: nvmlDevice_t,
    event_types: *mut c_ulonglong,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetSupportedEventTypes", device, |_| {
        SUPPORTED_EVENTS
    });
    // SAFETY: NVML contract: `event_types` is valid for a write.
    code(r.and_then(|t| unsafe { put(event_types, t) }))
}

#[no_mangle]
pub extern "C" fn nvmlDeviceRegisterEvents(
    device: nvmlDevice_t,
    event_types: c_ulonglong,
    set: nvmlEventSet_t,
) -> nvmlReturn_t {
    code(device_call(
        "nvmlDeviceRegisterEvents",
        device,
        |st, gpu| {
            if event_types & !SUPPORTED_EVENTS != 0 {
                return Err(NOT_SUPPORTED);
            }
            let s = st.sets.get_mut(&set.addr()).ok_or(INVALID)?;
            s.registered.push((gpu, event_types));
            Ok(())
        },
    ))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlEventSetWait_v2(
    set: nvmlEventSet_t,
    data: *mut nvmlEventData_t,
    timeoutms: c_uint,
) -> nvmlReturn_t {
    let w = match enter("nvmlEventSetWait_v2", None) {
        Ok(w) => w,
        Err(c) => return c,
    };
    let deadline = Instant::now() + Duration::from_millis(u64::from(timeoutms));
    loop {
        let event = {
            let now = w.started.elapsed();
            let mut st = lock(&w.state);
            st.advance(now);
            if let Some(c) = st.failure("nvmlEventSetWait_v2", None, now) {
                return c;
            }
            match st.sets.get_mut(&set.addr()) {
                Some(s) => s.queue.pop_front(),
                None => return INVALID,
            }
        };
        if let Some((gpu, xid)) = event {
            let value = nvmlEventData_t {
                device: handle(gpu),
                eventType: c_ulonglong::from(nvmlEventTypeXidCriticalError),
                eventData: xid,
                gpuInstanceId: 0,
                computeInstanceId: 0,
            };
            // SAFETY: NVML contract: `data` is valid for a write.
            return code(unsafe { put(data, value) });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return TIMEOUT;
        }
        std::thread::sleep(left.min(Duration::from_millis(5)));
    }
}
