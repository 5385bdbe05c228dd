//! The real probe: reads the GPUs through NVML (`libnvidia-ml.so.1`, loaded at run time by
//! nvml-wrapper, so the binary builds and starts on machines without a driver).
//!
//! Every NVML call runs on a worker thread and is given up after the call timeout: a call
//! that does not answer becomes an entry in the GPU's `errors` (`"nvmlDeviceGetTemperature did
//! not answer within 2s"`) with the fault [`CallFault::Timeout`], the rest of that GPU's calls
//! are skipped for this reading, and the next call gets a fresh worker thread. The hung call
//! keeps its thread; until it returns, the same function is not called again on the same GPU
//! (the reading says it is still hung), so a wedged driver costs at most one thread per
//! function and GPU, and one call timeout per GPU and reading.
//!
//! XID events are waited for on a dedicated thread (an NVML event set with
//! `CRITICAL_XID_ERROR` registered on every GPU that supports it). Each event goes to the
//! receiver returned by [`GpuProbe::xid_events`] and is attached to the next reading.
//! NVML reports only the most recent XID per wait, so XIDs in quick succession on one GPU can
//! collapse into the last one.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enum_wrappers::device::{
    EccCounter, MemoryError, RetirementCause, TemperatureSensor,
};
use nvml_wrapper::enums::device::SampleValue;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::event::EventSet;
use nvml_wrapper::struct_wrappers::device::FieldValueSample;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::{Device, Nvml};

use crate::health::{
    CallFault, GpuReading, NodeReading, RecoveryAction, RemappedRows, RetiredPages, XidEvent,
};
use crate::probe::{unix_ms, GpuProbe, ProbeError};

/// NVML field ids read with `nvmlDeviceGetFieldValues` (nvml.h).
const FI_REMAPPED_COR: u32 = 142;
const FI_REMAPPED_UNC: u32 = 143;
const FI_REMAPPED_PENDING: u32 = 144;
const FI_REMAPPED_FAILURE: u32 = 145;
const FI_GPU_RECOVERY_ACTION: u32 = 230;

/// `nvmlInit` can take seconds per GPU without persistence mode: it gets at least this long.
const MIN_INIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the event thread waits in one `nvmlEventSetWait` (also how quickly it notices
/// that the probe was dropped).
const EVENT_WAIT_MS: u32 = 500;

type Job = Box<dyn FnOnce() + Send>;

/// NVML instances, one per library path, initialised once and kept for the life of the
/// process (`Device<'static>` needs a `&'static Nvml`).
static INSTANCES: Mutex<Vec<(Option<PathBuf>, &'static Nvml)>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Formats a duration the way people write timeouts: `2s`, `500ms`, `1.5s`.
pub(crate) fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 1000 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{ms}ms")
    }
}

/// Why one bounded call produced no value.
enum CallError {
    /// Did not answer within the timeout.
    Timeout(Duration),
    /// An earlier call of the same function on the same GPU has not returned yet.
    StillHung(Duration),
    Nvml(NvmlError),
    /// The worker thread could not be started, or the call panicked.
    Internal(String),
}

impl CallError {
    /// What went wrong with the call of `name`, for people.
    fn message(&self, name: &str) -> String {
        match self {
            CallError::Timeout(d) => format!("{name} did not answer within {}", human_duration(*d)),
            CallError::StillHung(since) => format!(
                "{name} still has not answered a call made {} ago",
                human_duration(Duration::from_millis(since.as_millis() as u64 / 100 * 100))
            ),
            CallError::Nvml(e) => format!("{name} failed: {e}"),
            CallError::Internal(msg) => msg.clone(),
        }
    }
}

struct HungCall {
    since: Instant,
    done: Arc<AtomicBool>,
}

/// Runs NVML calls on a worker thread, each bounded by `timeout`.
struct Runner {
    timeout: Duration,
    worker: Mutex<Option<Sender<Job>>>,
    hung: Mutex<HashMap<(Option<u32>, &'static str), HungCall>>,
}

fn spawn_worker() -> Result<Sender<Job>, String> {
    let (tx, rx) = mpsc::channel::<Job>();
    thread::Builder::new()
        .name("nvml-call".into())
        .spawn(move || {
            for job in rx {
                job();
            }
        })
        .map_err(|e| format!("cannot start an NVML worker thread: {e}"))?;
    Ok(tx)
}

impl Runner {
    fn new(timeout: Duration) -> Self {
        Runner {
            timeout,
            worker: Mutex::new(None),
            hung: Mutex::new(HashMap::new()),
        }
    }

    fn call<T, F>(&self, gpu: Option<u32>, name: &'static str, f: F) -> Result<T, CallError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, NvmlError> + Send + 'static,
    {
        {
            let mut hung = lock(&self.hung);
            if let Some(h) = hung.get(&(gpu, name)) {
                if !h.done.load(Ordering::Acquire) {
                    return Err(CallError::StillHung(h.since.elapsed()));
                }
                hung.remove(&(gpu, name));
            }
        }
        let done = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::sync_channel(1);
        let job_done = Arc::clone(&done);
        let job: Job = Box::new(move || {
            let result = f();
            job_done.store(true, Ordering::Release);
            // The caller may have given up: nobody to tell.
            let _ = tx.send(result);
        });

        let mut worker = lock(&self.worker);
        let job = match worker.as_ref() {
            Some(w) => match w.send(job) {
                Ok(()) => None,
                Err(mpsc::SendError(job)) => Some(job),
            },
            None => Some(job),
        };
        if let Some(job) = job {
            let fresh = spawn_worker().map_err(CallError::Internal)?;
            fresh
                .send(job)
                .map_err(|_| CallError::Internal("the NVML worker thread exited".into()))?;
            *worker = Some(fresh);
        }
        let started = Instant::now();
        match rx.recv_timeout(self.timeout) {
            Ok(result) => result.map_err(CallError::Nvml),
            Err(RecvTimeoutError::Timeout) => {
                // The hung call keeps the old thread; the next call starts a new one.
                *worker = None;
                lock(&self.hung).insert(
                    (gpu, name),
                    HungCall {
                        since: started,
                        done,
                    },
                );
                Err(CallError::Timeout(self.timeout))
            }
            Err(RecvTimeoutError::Disconnected) => {
                *worker = None;
                Err(CallError::Internal(format!("{name} panicked")))
            }
        }
    }
}

/// Notes from the event thread, attached to the next reading.
#[derive(Default)]
struct EventNotes {
    xids: Vec<XidEvent>,
    /// (GPU, message); `None` = every GPU.
    errors: Vec<(Option<u32>, String)>,
}

/// The identity last seen at an index.
#[derive(Clone)]
struct Identity {
    uuid: String,
    name: String,
}

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

fn init_nvml(lib_path: Option<&Path>, timeout: Duration) -> Result<&'static Nvml, ProbeError> {
    let mut instances = lock(&INSTANCES);
    let key = lib_path.map(Path::to_path_buf);
    if let Some((_, nvml)) = instances.iter().find(|(k, _)| *k == key) {
        return Ok(nvml);
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let path = key.clone();
    thread::Builder::new()
        .name("nvml-init".into())
        .spawn(move || {
            let mut builder = Nvml::builder();
            if let Some(p) = path.as_deref() {
                builder.lib_path(p.as_os_str());
            }
            let _ = tx.send(builder.init());
        })
        .map_err(|e| ProbeError::Failed(format!("cannot start the NVML init thread: {e}")))?;
    let wait = timeout.max(MIN_INIT_TIMEOUT);
    let nvml = match rx.recv_timeout(wait) {
        Ok(Ok(nvml)) => nvml,
        Ok(Err(e)) => return Err(ProbeError::NotAvailable(init_error_message(&e, lib_path))),
        Err(RecvTimeoutError::Timeout) => {
            return Err(ProbeError::NotAvailable(format!(
                "nvmlInit_v2 did not answer within {}",
                human_duration(wait)
            )))
        }
        Err(RecvTimeoutError::Disconnected) => {
            return Err(ProbeError::NotAvailable("nvmlInit_v2 panicked".into()))
        }
    };
    let nvml: &'static Nvml = Box::leak(Box::new(nvml));
    instances.push((key, nvml));
    Ok(nvml)
}

fn init_error_message(e: &NvmlError, lib_path: Option<&Path>) -> String {
    let lib = lib_path
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "libnvidia-ml.so.1".into());
    match e {
        // libloading's message already names the file and the reason.
        NvmlError::LibloadingError(inner) => format!("cannot load {lib}: {inner}"),
        other => format!("nvmlInit_v2 ({lib}) failed: {other}"),
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

    fn read_gpu(&self, index: u32) -> GpuReading {
        let nvml = self.nvml;
        let mut r = GpuCall {
            runner: &self.runner,
            index,
            reading: GpuReading {
                index,
                ..GpuReading::default()
            },
            stopped: None,
        };
        // The last identity seen at this index stands in when the GPU cannot be asked (lost).
        let cached = lock(&self.identities).get(&index).cloned();
        if let Some(id) = &cached {
            r.reading.uuid.clone_from(&id.uuid);
            r.reading.name.clone_from(&id.name);
        }
        let Some(device) = r.get("nvmlDeviceGetHandleByIndex_v2", move || {
            nvml.device_by_index(index).map(Arc::new)
        }) else {
            return r.finish();
        };

        // The UUID is read every time (cheap, and an index could name another GPU after a
        // rediscovery); the name only when the UUID is new.
        let d = Arc::clone(&device);
        if let Some(uuid) = r.get("nvmlDeviceGetUUID", move || d.uuid()) {
            r.reading.uuid.clone_from(&uuid);
            if cached.as_ref().is_none_or(|c| c.uuid != uuid) {
                let d = Arc::clone(&device);
                let name = r
                    .get("nvmlDeviceGetName", move || d.name())
                    .unwrap_or_default();
                r.reading.name.clone_from(&name);
                lock(&self.identities).insert(index, Identity { uuid, name });
            }
        }

        let d = Arc::clone(&device);
        r.reading.temperature_c = r.get("nvmlDeviceGetTemperature", move || {
            d.temperature(TemperatureSensor::Gpu)
        });
        let d = Arc::clone(&device);
        r.reading.power_w = r
            .get("nvmlDeviceGetPowerUsage", move || d.power_usage())
            .map(|mw| f64::from(mw) / 1000.0);
        let d = Arc::clone(&device);
        if let Some(mem) = r.get("nvmlDeviceGetMemoryInfo_v2", move || d.memory_info()) {
            r.reading.memory_used_bytes = Some(mem.used);
            r.reading.memory_total_bytes = Some(mem.total);
        }
        let d = Arc::clone(&device);
        r.reading.ecc_volatile_uncorrected = r.get("nvmlDeviceGetTotalEccErrors", move || {
            d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile)
        });

        let d = Arc::clone(&device);
        let sbe = r.get("nvmlDeviceGetRetiredPages", move || {
            d.retired_pages(RetirementCause::MultipleSingleBitEccErrors)
                .map(|p| p.len() as u64)
        });
        let d = Arc::clone(&device);
        let dbe = r.get("nvmlDeviceGetRetiredPages", move || {
            d.retired_pages(RetirementCause::DoubleBitEccError)
                .map(|p| p.len() as u64)
        });
        let d = Arc::clone(&device);
        let pending = r.get("nvmlDeviceGetRetiredPagesPendingStatus", move || {
            d.are_pages_pending_retired()
        });
        if sbe.is_some() || dbe.is_some() || pending.is_some() {
            r.reading.retired_pages = Some(RetiredPages {
                single_bit: sbe.unwrap_or(0),
                double_bit: dbe.unwrap_or(0),
                pending: pending.unwrap_or(false),
            });
        }

        // Row remapping is not wrapped by nvml-wrapper (nvmlDeviceGetRemappedRows): read it,
        // and the driver's recovery action, as field values.
        let d = Arc::clone(&device);
        if let Some(samples) = r.get("nvmlDeviceGetFieldValues", move || {
            d.field_values_for(&[
                FieldId(FI_REMAPPED_COR),
                FieldId(FI_REMAPPED_UNC),
                FieldId(FI_REMAPPED_PENDING),
                FieldId(FI_REMAPPED_FAILURE),
                FieldId(FI_GPU_RECOVERY_ACTION),
            ])
        }) {
            r.apply_field_values(samples);
        }

        let d = Arc::clone(&device);
        if let Some(reasons) = r.get("nvmlDeviceGetCurrentClocksThrottleReasons", move || {
            d.current_throttle_reasons()
        }) {
            r.reading.throttle_reasons = Some(reasons.bits());
            r.reading.throttle_names = reasons
                .iter_names()
                .map(|(name, _)| name.to_string())
                .collect();
        }
        let d = Arc::clone(&device);
        r.reading.pcie_replay_count = r
            .get("nvmlDeviceGetPcieReplayCounter", move || {
                d.pcie_replay_counter()
            })
            .map(u64::from);
        r.finish()
    }
}

/// One GPU's calls during one reading.
struct GpuCall<'a> {
    runner: &'a Runner,
    index: u32,
    reading: GpuReading,
    /// Set when a call failed in a way that makes the remaining calls pointless (timeout,
    /// GPU lost): the function's name.
    stopped: Option<&'static str>,
}

impl GpuCall<'_> {
    fn fault(&mut self, fault: CallFault, message: String) {
        self.reading.errors.push(message);
        if !self.reading.faults.contains(&fault) {
            self.reading.faults.push(fault);
        }
    }

    /// Makes one bounded call; records failures; `None` for failures and "not supported".
    fn get<T, F>(&mut self, name: &'static str, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, NvmlError> + Send + 'static,
    {
        if self.stopped.is_some() {
            return None;
        }
        match self.runner.call(Some(self.index), name, f) {
            Ok(v) => Some(v),
            Err(CallError::Nvml(e)) => {
                self.nvml_error(name, e);
                None
            }
            Err(e @ CallError::Timeout(_)) => {
                self.fault(CallFault::Timeout, e.message(name));
                self.stopped = Some(name);
                None
            }
            Err(e @ CallError::StillHung(_)) => {
                self.fault(CallFault::Timeout, e.message(name));
                None
            }
            Err(CallError::Internal(msg)) => {
                self.fault(CallFault::Error, msg);
                None
            }
        }
    }

    fn nvml_error(&mut self, name: &str, e: NvmlError) {
        match e {
            // Capability absent, or a driver too old to have the function: not an error.
            NvmlError::NotSupported
            | NvmlError::FunctionNotFound
            | NvmlError::FailedToLoadSymbol(_) => {}
            NvmlError::GpuLost => {
                self.fault(
                    CallFault::GpuLost,
                    format!("{name}: the GPU is lost (fallen off the bus or inaccessible)"),
                );
                self.stopped = Some("GPU lost");
            }
            NvmlError::ResetRequired => self.fault(
                CallFault::ResetRequired,
                format!("{name}: the GPU requires a reset"),
            ),
            other => self.fault(CallFault::Error, format!("{name} failed: {other}")),
        }
    }

    fn apply_field_values(&mut self, samples: Vec<Result<FieldValueSample, NvmlError>>) {
        let mut values: HashMap<u32, u64> = HashMap::new();
        for sample in samples {
            let sample = match sample {
                Ok(s) => s,
                Err(e) => {
                    self.nvml_error("nvmlDeviceGetFieldValues", e);
                    continue;
                }
            };
            let id = sample.field.0;
            match sample.value {
                Ok(v) => {
                    values.insert(id, sample_u64(&v));
                }
                // Unknown field ids (older drivers) answer InvalidArg or NotSupported.
                Err(NvmlError::NotSupported | NvmlError::InvalidArg) => {}
                Err(e) => self.nvml_error(field_name(id), e),
            }
        }
        if let (Some(cor), Some(unc), Some(pending), Some(failure)) = (
            values.get(&FI_REMAPPED_COR),
            values.get(&FI_REMAPPED_UNC),
            values.get(&FI_REMAPPED_PENDING),
            values.get(&FI_REMAPPED_FAILURE),
        ) {
            self.reading.remapped_rows = Some(RemappedRows {
                correctable: *cor,
                uncorrectable: *unc,
                pending: *pending != 0,
                failure: *failure != 0,
            });
        }
        if let Some(v) = values.get(&FI_GPU_RECOVERY_ACTION) {
            match recovery_action(*v) {
                Some(a) => self.reading.recovery_action = Some(a),
                None => self.fault(
                    CallFault::Error,
                    format!(
                        "NVML_FI_DEV_GET_GPU_RECOVERY_ACTION has a value this probe does not \
                         know: {v}"
                    ),
                ),
            }
        }
    }

    fn finish(mut self) -> GpuReading {
        if let Some(name) = self.stopped {
            if name != "GPU lost" {
                self.reading.errors.push(format!(
                    "skipped the remaining NVML calls on GPU {} for this reading after {name} \
                     did not answer",
                    self.index
                ));
            }
        }
        self.reading
    }
}

fn field_name(id: u32) -> &'static str {
    match id {
        FI_REMAPPED_COR => "NVML_FI_DEV_REMAPPED_COR",
        FI_REMAPPED_UNC => "NVML_FI_DEV_REMAPPED_UNC",
        FI_REMAPPED_PENDING => "NVML_FI_DEV_REMAPPED_PENDING",
        FI_REMAPPED_FAILURE => "NVML_FI_DEV_REMAPPED_FAILURE",
        FI_GPU_RECOVERY_ACTION => "NVML_FI_DEV_GET_GPU_RECOVERY_ACTION",
        _ => "nvmlDeviceGetFieldValues",
    }
}

fn sample_u64(v: &SampleValue) -> u64 {
    match *v {
        SampleValue::U32(x) => u64::from(x),
        SampleValue::U64(x) => x,
        SampleValue::I64(x) => u64::try_from(x).unwrap_or(0),
        SampleValue::F64(x) if x.is_finite() && x > 0.0 => x as u64,
        SampleValue::F64(_) => 0,
    }
}

/// `nvmlDeviceGpuRecoveryAction_t`. Newer headers add 5 (RECOVER_IMEX_DOMAIN), 6 (BUS_RESET)
/// and 7 (SYSTEM_REBOOT): a bus reset or system reboot needs more than a GPU reset, so both
/// are reported as `NodeReboot`; 5 and unknown values are reported as errors.
fn recovery_action(v: u64) -> Option<RecoveryAction> {
    match v {
        0 => Some(RecoveryAction::None),
        1 => Some(RecoveryAction::GpuReset),
        2 | 6 | 7 => Some(RecoveryAction::NodeReboot),
        3 => Some(RecoveryAction::DrainP2p),
        4 => Some(RecoveryAction::DrainAndReset),
        _ => None,
    }
}

fn event_loop(
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
        let mut gpus: Vec<GpuReading> = (0..count).map(|i| self.read_gpu(i)).collect();

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(human_duration(Duration::from_secs(2)), "2s");
        assert_eq!(human_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn recovery_action_values() {
        assert_eq!(recovery_action(0), Some(RecoveryAction::None));
        assert_eq!(recovery_action(1), Some(RecoveryAction::GpuReset));
        assert_eq!(recovery_action(2), Some(RecoveryAction::NodeReboot));
        assert_eq!(recovery_action(3), Some(RecoveryAction::DrainP2p));
        assert_eq!(recovery_action(4), Some(RecoveryAction::DrainAndReset));
        assert_eq!(recovery_action(5), None);
        assert_eq!(recovery_action(7), Some(RecoveryAction::NodeReboot));
    }

    #[test]
    fn bogus_library_is_not_available() {
        let err = NvmlProbe::load(
            Some(Path::new("/nonexistent/libnvidia-ml.so.1")),
            "n",
            Duration::from_secs(2),
        )
        .unwrap_err();
        assert!(matches!(err, ProbeError::NotAvailable(_)), "{err:?}");
        let msg = err.to_string();
        assert!(msg.starts_with("NVML not available: "), "{msg}");
        assert!(msg.contains("/nonexistent/libnvidia-ml.so.1"), "{msg}");
    }
}
