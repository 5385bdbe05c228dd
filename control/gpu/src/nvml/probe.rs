//! [`NvmlProbe`]: the probe itself, its loading, and one reading of the node.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use nvml_wrapper::Nvml;

use super::events::{event_loop, EventNotes};
use super::init::init_nvml;
use super::lock::lock;
use super::read::{read_gpu, Identity};
use super::runner::Runner;
use crate::health::{CallFault, GpuReading, NodeReading, XidEvent};
use crate::probe::{unix_ms, GpuProbe, ProbeError};

/// Reads GPUs through NVML. See the module documentation.
pub struct NvmlProbe {
    nvml: &'static Nvml,
    node: String,
    runner: Runner,
    driver_version: Option<String>,
    identities: Mutex<HashMap<u32, Identity>>,
    notes: Arc<Mutex<EventNotes>>,
    xid_rx: Mutex<Option<Receiver<XidEvent>>>,
    stop: Arc<AtomicBool>,
}

impl fmt::Debug for NvmlProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NvmlProbe")
            .field("node", &self.node)
            .field("call_timeout", &self.runner.timeout)
            .field("driver_version", &self.driver_version)
            .finish_non_exhaustive()
    }
}

impl Drop for NvmlProbe {
    fn drop(&mut self) {
        // The event thread notices within one wait and exits; it is not joined, as it may be
        // stuck in a hung call.
        self.stop.store(true, Ordering::Release);
    }
}

impl NvmlProbe {
    /// Loads NVML and starts the XID event thread.
    ///
    /// `lib_path`: the NVML library to load (`None`: the system's `libnvidia-ml.so.1`; tests
    /// pass the fake library). The library is initialised once per path and process and shared
    /// by every probe. `node` names the node in readings. `call_timeout` bounds every NVML call
    /// (initialisation gets at least 30 s).
    ///
    /// Errors: [`ProbeError::NotAvailable`] with the loader's or driver's message when there is
    /// no usable NVML (no library, no driver, no permission).
    pub fn load(
        lib_path: Option<&Path>,
        node: &str,
        call_timeout: Duration,
    ) -> Result<NvmlProbe, ProbeError> {
        let nvml = init_nvml(lib_path, call_timeout)?;
        let runner = Runner::new(call_timeout);
        let driver_version = runner
            .call(None, "nvmlSystemGetDriverVersion", move || {
                nvml.sys_driver_version()
            })
            .ok();
        let notes = Arc::new(Mutex::new(EventNotes::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (xid_tx, xid_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        {
            let thread_notes = Arc::clone(&notes);
            let stop = Arc::clone(&stop);
            let spawned = thread::Builder::new()
                .name("nvml-xid-events".into())
                .spawn(move || event_loop(nvml, &thread_notes, &xid_tx, &stop, &ready_tx));
            if let Err(e) = spawned {
                lock(&notes)
                    .errors
                    .push((None, format!("cannot start the XID event thread: {e}")));
            } else {
                // Wait (bounded) until the event set is registered, so that no XID after
                // `load` returns is missed. A hung registration is reported by the thread.
                let _ = ready_rx.recv_timeout(call_timeout);
            }
        }
        Ok(NvmlProbe {
            nvml,
            node: node.to_string(),
            runner,
            driver_version,
            identities: Mutex::new(HashMap::new()),
            notes,
            xid_rx: Mutex::new(Some(xid_rx)),
            stop,
        })
    }

    /// The driver version read at load time.
    pub fn driver_version(&self) -> Option<&str> {
        self.driver_version.as_deref()
    }
}

impl GpuProbe for NvmlProbe {
    fn read(&self) -> Result<NodeReading, ProbeError> {
        let read_at_ms = unix_ms();
        let nvml = self.nvml;
        let count = match self
            .runner
            .call(None, "nvmlDeviceGetCount_v2", move || nvml.device_count())
        {
            Ok(n) => n,
            Err(e) => return Err(ProbeError::Failed(e.message("nvmlDeviceGetCount_v2"))),
        };
        let mut gpus: Vec<GpuReading> = (0..count)
            .map(|i| read_gpu(self.nvml, &self.runner, &self.identities, i))
            .collect();

        let notes = std::mem::take(&mut *lock(&self.notes));
        for ev in notes.xids {
            if let Some(g) = gpus.iter_mut().find(|g| g.index == ev.gpu) {
                g.xids.push(ev);
            }
        }
        for (gpu, msg) in notes.errors {
            for g in gpus.iter_mut().filter(|g| gpu.is_none_or(|i| i == g.index)) {
                g.errors.push(msg.clone());
                if !g.faults.contains(&CallFault::Error) {
                    g.faults.push(CallFault::Error);
                }
            }
        }
        Ok(NodeReading {
            node: self.node.clone(),
            driver_version: self.driver_version.clone(),
            gpus,
            read_at_ms,
        })
    }

    fn xid_events(&self) -> Option<Receiver<XidEvent>> {
        lock(&self.xid_rx).take()
    }
}
