//! The XID event thread: an NVML event set with `CRITICAL_XID_ERROR` registered on every GPU
//! that supports it, waited on until the probe is dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::event::EventSet;
use nvml_wrapper::{Device, Nvml};

use super::lock::lock;
use crate::health::XidEvent;
use crate::probe::unix_ms;

/// How long the event thread waits in one `nvmlEventSetWait` (also how quickly it notices
/// that the probe was dropped).
const EVENT_WAIT_MS: u32 = 500;

#[derive(Default)]
pub(super) struct EventNotes {
    pub(super) xids: Vec<XidEvent>,
    /// (GPU, message); `None` = every GPU.
    pub(super) errors: Vec<(Option<u32>, String)>,
}

pub(super) fn event_loop(
    nvml: &'static Nvml,
    notes: &Mutex<EventNotes>,
    xid_tx: &Sender<XidEvent>,
    stop: &AtomicBool,
    ready: &mpsc::SyncSender<()>,
) {
    let note = |gpu: Option<u32>, msg: String| lock(notes).errors.push((gpu, msg));
    let set = match register_all(nvml, &note) {
        Ok(set) => set,
        Err(msg) => {
            note(None, msg);
            None
        }
    };
    let _ = ready.send(());
    let Some(set) = set else { return };
    let mut failing = false;
    while !stop.load(Ordering::Acquire) {
        match set.wait(EVENT_WAIT_MS) {
            Ok(event) => {
                failing = false;
                let Some(xid) = event.event_data else {
                    continue;
                };
                let xid = match xid {
                    XidError::Value(v) => v,
                    XidError::Unknown => 999,
                };
                let gpu = match event.device.index() {
                    Ok(i) => i,
                    Err(e) => {
                        note(
                            None,
                            format!("XID {xid} arrived for a GPU whose index cannot be read: {e}"),
                        );
                        continue;
                    }
                };
                let ev = XidEvent {
                    gpu,
                    xid,
                    at_ms: unix_ms(),
                };
                lock(notes).xids.push(ev.clone());
                // Nobody may be listening.
                let _ = xid_tx.send(ev);
            }
            Err(NvmlError::Timeout) => failing = false,
            Err(e) => {
                if !failing {
                    note(None, format!("waiting for XID events failed: {e}"));
                }
                failing = true;
                thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// Creates an event set with `CRITICAL_XID_ERROR` registered on every GPU that supports it.
/// A GPU whose registration fails is noted and left out (a failed registration frees the set,
/// so the set is rebuilt without it).
fn register_all(
    nvml: &'static Nvml,
    note: &dyn Fn(Option<u32>, String),
) -> Result<Option<EventSet<'static>>, String> {
    let count = nvml
        .device_count()
        .map_err(|e| format!("XID events: nvmlDeviceGetCount_v2 failed: {e}"))?;
    let mut devices: Vec<(u32, Device<'static>)> = Vec::new();
    for i in 0..count {
        let device = match nvml.device_by_index(i) {
            Ok(d) => d,
            Err(e) => {
                note(Some(i), format!("XID events: no handle for GPU {i}: {e}"));
                continue;
            }
        };
        match device.supported_event_types() {
            Ok(types) if types.contains(EventTypes::CRITICAL_XID_ERROR) => {
                devices.push((i, device))
            }
            Ok(_) | Err(NvmlError::NotSupported) => {}
            Err(e) => note(
                Some(i),
                format!("XID events: nvmlDeviceGetSupportedEventTypes failed on GPU {i}: {e}"),
            ),
        }
    }
    'build: while !devices.is_empty() {
        let mut set = nvml
            .create_event_set()
            .map_err(|e| format!("XID events: nvmlEventSetCreate failed: {e}"))?;
        for pos in 0..devices.len() {
            let (i, device) = &devices[pos];
            match device.register_events(EventTypes::CRITICAL_XID_ERROR, set) {
                Ok(s) => set = s,
                Err(e) => {
                    note(
                        Some(*i),
                        format!("XID events cannot be registered on GPU {i}: {}", e.error),
                    );
                    devices.remove(pos);
                    continue 'build;
                }
            }
        }
        return Ok(Some(set));
    }
    Ok(None)
}
