//! An in-process probe that answers from a script, for tests of whatever consumes readings
//! (the policy, the control loop, the health feed).
//!
//! ```
//! use infergate_gpu::fake::{healthy_gpu, node_reading, FakeProbe};
//! use infergate_gpu::probe::GpuProbe;
//!
//! let probe = FakeProbe::new();
//! probe.push_reading(node_reading("node-a", 1_000, vec![healthy_gpu(0), healthy_gpu(1)]));
//! let reading = probe.read().unwrap();
//! assert_eq!(reading.gpus.len(), 2);
//! ```

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::health::{GpuReading, NodeReading, RemappedRows, RetiredPages, XidEvent};
use crate::probe::{GpuProbe, ProbeError};

enum Scripted {
    Reading(Box<NodeReading>),
    Error(ProbeError),
}

struct State {
    script: VecDeque<Scripted>,
    last: Option<NodeReading>,
    pending_xids: Vec<XidEvent>,
    xid_tx: Sender<XidEvent>,
    xid_rx: Option<Receiver<XidEvent>>,
    reads: usize,
}

/// A probe that returns scripted readings and errors in order.
///
/// When the script runs out, `read` repeats the last reading (without its XIDs), or fails if
/// there never was one. XIDs injected with [`FakeProbe::inject_xid`] are sent on the
/// [`GpuProbe::xid_events`] channel at once and attached to the next reading, as the NVML
/// probe does.
pub struct FakeProbe {
    state: Mutex<State>,
}

impl Default for FakeProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for FakeProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("FakeProbe")
            .field("scripted", &s.script.len())
            .field("reads", &s.reads)
            .finish()
    }
}

impl FakeProbe {
    /// An empty script.
    pub fn new() -> Self {
        let (xid_tx, xid_rx) = mpsc::channel();
        FakeProbe {
            state: Mutex::new(State {
                script: VecDeque::new(),
                last: None,
                pending_xids: Vec::new(),
                xid_tx,
                xid_rx: Some(xid_rx),
                reads: 0,
            }),
        }
    }

    /// A script of readings.
    pub fn with_readings(readings: impl IntoIterator<Item = NodeReading>) -> Self {
        let probe = Self::new();
        for r in readings {
            probe.push_reading(r);
        }
        probe
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends a reading to the script.
    pub fn push_reading(&self, reading: NodeReading) {
        self.lock()
            .script
            .push_back(Scripted::Reading(Box::new(reading)));
    }

    /// Appends a failed read to the script.
    pub fn push_error(&self, error: ProbeError) {
        self.lock().script.push_back(Scripted::Error(error));
    }

    /// Reports an XID now: on the event channel, and in the next reading's GPU `xids`.
    pub fn inject_xid(&self, event: XidEvent) {
        let mut s = self.lock();
        let _ = s.xid_tx.send(event.clone());
        s.pending_xids.push(event);
    }

    /// How many times `read` was called.
    pub fn reads(&self) -> usize {
        self.lock().reads
    }
}

impl GpuProbe for FakeProbe {
    fn read(&self) -> Result<NodeReading, ProbeError> {
        let mut s = self.lock();
        s.reads += 1;
        let mut reading = match s.script.pop_front() {
            Some(Scripted::Reading(r)) => *r,
            Some(Scripted::Error(e)) => return Err(e),
            None => match &s.last {
                Some(last) => {
                    let mut r = last.clone();
                    for g in &mut r.gpus {
                        g.xids.clear();
                    }
                    r
                }
                None => {
                    return Err(ProbeError::Failed(
                        "fake probe: nothing scripted".to_string(),
                    ))
                }
            },
        };
        for ev in std::mem::take(&mut s.pending_xids) {
            if let Some(g) = reading.gpus.iter_mut().find(|g| g.index == ev.gpu) {
                g.xids.push(ev);
            }
        }
        s.last = Some(reading.clone());
        Ok(reading)
    }

    fn xid_events(&self) -> Option<Receiver<XidEvent>> {
        self.lock().xid_rx.take()
    }
}

/// A healthy H100-like GPU reading: UUID `GPU-fake-<index>`, 40 °C, 120 W, 1 of 80 GiB used,
/// no ECC errors, no retired pages, no remapped rows, no throttling, no PCIe replays, recovery
/// action `none`.
pub fn healthy_gpu(index: u32) -> GpuReading {
    GpuReading {
        index,
        uuid: format!("GPU-fake-{index}"),
        name: "NVIDIA H100 80GB HBM3".to_string(),
        temperature_c: Some(40),
        power_w: Some(120.0),
        memory_used_bytes: Some(1 << 30),
        memory_total_bytes: Some(80 << 30),
        ecc_volatile_uncorrected: Some(0),
        retired_pages: Some(RetiredPages::default()),
        remapped_rows: Some(RemappedRows::default()),
        xids: Vec::new(),
        throttle_reasons: Some(0),
        throttle_names: Vec::new(),
        pcie_replay_count: Some(0),
        recovery_action: Some(crate::health::RecoveryAction::None),
        errors: Vec::new(),
        faults: Vec::new(),
    }
}

/// A node reading at `read_at_ms` (Unix milliseconds) with driver version `550.54.15`.
pub fn node_reading(node: &str, read_at_ms: u64, gpus: Vec<GpuReading>) -> NodeReading {
    NodeReading {
        node: node.to_string(),
        driver_version: Some("550.54.15".to_string()),
        gpus,
        read_at_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_then_repeat_then_xids() {
        let probe = FakeProbe::new();
        assert!(probe.read().is_err());
        probe.push_reading(node_reading("n", 1, vec![healthy_gpu(0)]));
        probe.push_error(ProbeError::Failed("boom".into()));
        let rx = probe.xid_events().unwrap();
        assert!(probe.xid_events().is_none());
        probe.inject_xid(XidEvent {
            gpu: 0,
            xid: 79,
            at_ms: 5,
        });
        assert_eq!(rx.try_recv().unwrap().xid, 79);
        let r = probe.read().unwrap();
        assert_eq!(r.gpus[0].xids.len(), 1);
        assert!(probe.read().is_err());
        let again = probe.read().unwrap();
        assert!(again.gpus[0].xids.is_empty());
        assert_eq!(probe.reads(), 4);
    }
}
