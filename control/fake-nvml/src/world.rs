//! The scripted world: the devices, the timeline of changes, the hang and failure windows, and
//! the event sets.

use std::collections::{HashMap, VecDeque};
use std::ffi::c_ulonglong;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nvml_wrapper_sys::bindings::*;

use crate::codes::UNKNOWN;
use crate::scenario::{call_matches, Device, Entry, Scenario};

#[derive(Default)]
pub(crate) struct EventSet {
    /// (GPU, event mask)
    pub(crate) registered: Vec<(u32, c_ulonglong)>,
    /// (GPU, XID)
    pub(crate) queue: VecDeque<(u32, u64)>,
}

pub(crate) struct WorldState {
    pub(crate) devices: Vec<Device>,
    /// xid / set / lost entries, by time, applied once.
    pub(crate) changes: Vec<Entry>,
    pub(crate) applied: usize,
    /// hang / fail entries, evaluated against each call.
    pub(crate) windows: Vec<Entry>,
    pub(crate) sets: HashMap<usize, EventSet>,
    pub(crate) next_set: usize,
}

pub(crate) struct World {
    pub(crate) started: Instant,
    pub(crate) driver_version: String,
    pub(crate) state: Mutex<WorldState>,
}

impl World {
    pub(crate) fn new(s: Scenario) -> World {
        let devices = s
            .devices
            .iter()
            .enumerate()
            .map(|(i, patch)| {
                let mut d = Device::defaults(i);
                d.apply(patch);
                d
            })
            .collect();
        let (mut windows, mut changes): (Vec<Entry>, Vec<Entry>) = s
            .timeline
            .into_iter()
            .partition(|e| e.hang.is_some() || e.fail.is_some());
        changes.sort_by_key(|e| e.at.0);
        windows.sort_by_key(|e| e.at.0);
        World {
            started: Instant::now(),
            driver_version: s.driver_version.unwrap_or_else(|| "550.54.15".into()),
            state: Mutex::new(WorldState {
                devices,
                changes,
                applied: 0,
                windows,
                sets: HashMap::new(),
                next_set: 1,
            }),
        }
    }
}

pub(crate) fn in_window(e: &Entry, now: Duration) -> bool {
    now >= e.at.0 && e.duration.is_none_or(|d| now < e.at.0 + d.0)
}

pub(crate) fn window_applies(e: &Entry, gpu: Option<u32>) -> bool {
    e.gpu.is_none() || e.gpu == gpu
}

impl WorldState {
    pub(crate) fn advance(&mut self, now: Duration) {
        while let Some(e) = self.changes.get(self.applied) {
            if e.at.0 > now {
                break;
            }
            let e = e.clone();
            self.applied += 1;
            let Some(gpu) = e.gpu else { continue };
            if let Some(xid) = e.xid {
                for set in self.sets.values_mut() {
                    let listening = set.registered.iter().any(|&(g, mask)| {
                        g == gpu && mask & c_ulonglong::from(nvmlEventTypeXidCriticalError) != 0
                    });
                    if listening {
                        set.queue.push_back((gpu, xid));
                    }
                }
            }
            if let Some(dev) = self.devices.get_mut(gpu as usize) {
                if let Some(patch) = &e.set {
                    dev.apply(patch);
                }
                if let Some(lost) = e.lost {
                    dev.lost = lost;
                }
            }
        }
    }

    /// `Some(end)` if `call` hangs now (`end` `None`: forever).
    pub(crate) fn hang(
        &self,
        call: &str,
        gpu: Option<u32>,
        now: Duration,
    ) -> Option<Option<Duration>> {
        self.windows
            .iter()
            .filter(|e| e.hang.as_deref().is_some_and(|h| call_matches(h, call)))
            .filter(|e| window_applies(e, gpu) && in_window(e, now))
            .map(|e| e.duration.map(|d| e.at.0 + d.0))
            .max_by(|a, b| match (a, b) {
                (None, _) => std::cmp::Ordering::Greater,
                (_, None) => std::cmp::Ordering::Less,
                (Some(x), Some(y)) => x.cmp(y),
            })
    }

    pub(crate) fn failure(
        &self,
        call: &str,
        gpu: Option<u32>,
        now: Duration,
    ) -> Option<nvmlReturn_t> {
        self.windows
            .iter()
            .filter(|e| e.fail.as_deref().is_some_and(|f| call_matches(f, call)))
            .find(|e| window_applies(e, gpu) && in_window(e, now))
            .map(|e| e.with.map_or(UNKNOWN, |c| c.0))
    }
}
