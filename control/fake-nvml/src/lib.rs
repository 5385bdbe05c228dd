//! A fake `libnvidia-ml.so` for testing infergate's NVML probe without a GPU.
//!
//! Built as a C shared library (`target/<profile>/libinfergate_fake_nvml.so`) exporting, with
//! NVML's C ABI and names (checked at compile time against `nvml-wrapper-sys`), the functions
//! `infergate_gpu::nvml::NvmlProbe` calls through nvml-wrapper. Load it with
//! `NvmlProbe::load(Some(path_to_the_so), ..)` (nvml-wrapper's `Nvml::builder().lib_path(..)`).
//! Functions it does not export fail the call that needs them with nvml-wrapper's
//! `FailedToLoadSymbol`, which the probe treats as "not supported".
//!
//! # Scenario
//!
//! `nvmlInit` reads the scenario file named by the environment variable
//! `INFERGATE_FAKE_NVML_SCENARIO` (YAML, or JSON, which is YAML). Without the variable there is
//! one healthy GPU; a file that cannot be read or parsed makes `nvmlInit` answer
//! `NVML_ERROR_UNKNOWN` after printing why on stderr. The timeline starts at the first
//! `nvmlInit` of the process (the library is reference-counted like NVML; the last
//! `nvmlShutdown` forgets everything).
//!
//! ```yaml
//! driver_version: "550.54.15"     # nvmlSystemGetDriverVersion (default 550.54.15)
//! init_error: driver_not_loaded   # optional: nvmlInit fails with this
//! devices:                        # GPU 0, 1, ...; every field optional
//!   - uuid: GPU-...               # default GPU-fa4e0000-0000-4000-8000-<index, 12 digits>
//!     name: NVIDIA H100 80GB HBM3 # default
//!     temperature_c: 40           # alias temperature (°C)
//!     power_w: 100.0              # alias power (W; NVML answers mW)
//!     memory_used_bytes: 0        # alias memory_used
//!     memory_total_bytes: 85899345920   # alias memory_total (default 80 GiB)
//!     ecc_volatile_uncorrected: 0 # also ecc_aggregate_uncorrected, ecc_volatile_corrected,
//!                                 # ecc_aggregate_corrected
//!     retired_pages: { single_bit: 0, double_bit: 0, pending: false }
//!     remapped_rows: { correctable: 0, uncorrectable: 0, pending: false, failure: false }
//!     throttle_reasons: 0         # clock-event reason bits (HW_SLOWDOWN = 0x8, ...)
//!     pcie_replay_count: 0        # alias pcie_replays
//!     recovery_action: none       # field 230: none, gpu_reset, node_reboot, drain_p2p,
//!                                 # drain_and_reset, or a number
//!     unsupported: [nvmlDeviceGetRetiredPages]  # answer NVML_ERROR_NOT_SUPPORTED (a name
//!                                               # also covers its _v2)
//!     unsupported_fields: [230]   # field values that answer NOT_SUPPORTED
//! timeline:                       # `at` is relative to nvmlInit: 3s, 500ms, 1.5s, 2m, or seconds
//!   - { at: 1s, gpu: 1, xid: 79 }                  # XID through the event sets
//!   - { at: 5s, gpu: 0, set: { temperature: 97 } } # change any device field
//!   - { at: 2s, gpu: 0, hang: nvmlDeviceGetTemperature, for: 10s }
//!         # calls made in [2s, 12s) block until 12s; without `for`, forever;
//!         # without `gpu`, every GPU and the system calls (nvmlDeviceGetCount, nvmlEventSetWait)
//!   - { at: 4s, gpu: 1, lost: true }               # every call on GPU 1: NVML_ERROR_GPU_IS_LOST
//!   - { at: 3s, gpu: 0, fail: nvmlDeviceGetPowerUsage, with: unknown, for: 2s }
//!         # calls answer `with` (a name: unknown, no_permission, reset_required, gpu_is_lost,
//!         # timeout, ... or a number) in [3s, 5s)
//! ```
//!
//! Differences from a real driver: every XID is delivered (NVML collapses XIDs between two
//! waits into the last one); an XID reaches only event sets already registered for the GPU;
//! a lost GPU still has a handle (`nvmlDeviceGetHandleByIndex` succeeds, every other call on
//! it fails).
//!
//! # Safety
//!
//! Every exported function follows NVML's contract (nvml.h): pointer arguments are either null
//! (answered with `NVML_ERROR_INVALID_ARGUMENT`) or valid for the reads and writes nvml.h
//! documents for them. Device and event-set handles are small integers, never dereferenced.

#![allow(non_snake_case, non_upper_case_globals, clippy::missing_safety_doc)]

mod scenario;

use std::collections::{HashMap, VecDeque};
use std::ffi::{c_char, c_int, c_uint, c_ulonglong, CStr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nvml_wrapper_sys::bindings::*;

use crate::scenario::{call_matches, Device, Entry, Scenario};

/// The environment variable naming the scenario file.
pub const SCENARIO_ENV: &str = "INFERGATE_FAKE_NVML_SCENARIO";

const SUCCESS: nvmlReturn_t = nvmlReturn_enum_NVML_SUCCESS;
const INVALID: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
const NOT_SUPPORTED: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
const UNINITIALIZED: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
const INSUFFICIENT_SIZE: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE;
const GPU_IS_LOST: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST;
const TIMEOUT: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_TIMEOUT;
const UNKNOWN: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_UNKNOWN;

/// Event types a device supports (only XIDs are ever delivered).
const SUPPORTED_EVENTS: c_ulonglong = (nvmlEventTypeSingleBitEccError
    | nvmlEventTypeDoubleBitEccError
    | nvmlEventTypePState
    | nvmlEventTypeXidCriticalError
    | nvmlEventTypeClock) as c_ulonglong;

const FI_REMAPPED_COR: u32 = 142;
const FI_REMAPPED_UNC: u32 = 143;
const FI_REMAPPED_PENDING: u32 = 144;
const FI_REMAPPED_FAILURE: u32 = 145;
const FI_GPU_RECOVERY_ACTION: u32 = 230;

#[derive(Default)]
struct EventSet {
    /// (GPU, event mask)
    registered: Vec<(u32, c_ulonglong)>,
    /// (GPU, XID)
    queue: VecDeque<(u32, u64)>,
}

struct WorldState {
    devices: Vec<Device>,
    /// xid / set / lost entries, by time, applied once.
    changes: Vec<Entry>,
    applied: usize,
    /// hang / fail entries, evaluated against each call.
    windows: Vec<Entry>,
    sets: HashMap<usize, EventSet>,
    next_set: usize,
}

struct World {
    started: Instant,
    driver_version: String,
    state: Mutex<WorldState>,
}

struct Lib {
    refs: u32,
    world: Option<Arc<World>>,
}

static LIB: Mutex<Lib> = Mutex::new(Lib {
    refs: 0,
    world: None,
});

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl World {
    fn new(s: Scenario) -> World {
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

fn in_window(e: &Entry, now: Duration) -> bool {
    now >= e.at.0 && e.duration.is_none_or(|d| now < e.at.0 + d.0)
}

fn window_applies(e: &Entry, gpu: Option<u32>) -> bool {
    e.gpu.is_none() || e.gpu == gpu
}

impl WorldState {
    fn advance(&mut self, now: Duration) {
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
    fn hang(&self, call: &str, gpu: Option<u32>, now: Duration) -> Option<Option<Duration>> {
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

    fn failure(&self, call: &str, gpu: Option<u32>, now: Duration) -> Option<nvmlReturn_t> {
        self.windows
            .iter()
            .filter(|e| e.fail.as_deref().is_some_and(|f| call_matches(f, call)))
            .find(|e| window_applies(e, gpu) && in_window(e, now))
            .map(|e| e.with.map_or(UNKNOWN, |c| c.0))
    }
}

fn load_scenario() -> Result<Scenario, String> {
    match std::env::var_os(SCENARIO_ENV) {
        None => Ok(Scenario::one_gpu()),
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!("cannot read {SCENARIO_ENV}={}: {e}", path.to_string_lossy())
            })?;
            Scenario::parse(&text).map_err(|e| format!("scenario {}: {e}", path.to_string_lossy()))
        }
    }
}

fn world() -> Result<Arc<World>, nvmlReturn_t> {
    lock(&LIB).world.clone().ok_or(UNINITIALIZED)
}

/// Blocks while `call` is scripted to hang (no lock held), then returns the world.
fn enter(call: &str, gpu: Option<u32>) -> Result<Arc<World>, nvmlReturn_t> {
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
fn system_call<T>(
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

fn handle(index: u32) -> nvmlDevice_t {
    std::ptr::without_provenance_mut(index as usize + 1)
}

fn handle_index(device: nvmlDevice_t) -> Result<u32, nvmlReturn_t> {
    match device.addr() {
        0 => Err(INVALID),
        a => u32::try_from(a - 1).map_err(|_| INVALID),
    }
}

/// A call on one device: hangs, `lost`, failures and `unsupported` apply, then `f` answers
/// from the device's current values.
fn device_call<T>(
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
fn read_device<T>(
    call: &str,
    device: nvmlDevice_t,
    f: impl FnOnce(&Device) -> T,
) -> Result<T, nvmlReturn_t> {
    device_call(call, device, |st, gpu| {
        st.devices.get(gpu as usize).map(f).ok_or(INVALID)
    })
}

fn code(r: Result<(), nvmlReturn_t>) -> nvmlReturn_t {
    match r {
        Ok(()) => SUCCESS,
        Err(c) => c,
    }
}

/// Writes `v` to `ptr`.
///
/// # Safety
///
/// `ptr` is null or valid for a write of `T`.
unsafe fn put<T>(ptr: *mut T, v: T) -> Result<(), nvmlReturn_t> {
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
unsafe fn put_str(buf: *mut c_char, len: c_uint, s: &str) -> Result<(), nvmlReturn_t> {
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

fn unix_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

// ---- initialisation ----------------------------------------------------------------------

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

// ---- system ------------------------------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn nvmlSystemGetDriverVersion(
    version: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    code(
        system_call("nvmlSystemGetDriverVersion", |w, _| {
            Ok(w.driver_version.clone())
        })
        // SAFETY: NVML contract: `version` is valid for `length` bytes.
        .and_then(|v| unsafe { put_str(version, length, &v) }),
    )
}

#[no_mangle]
pub unsafe extern "C" fn nvmlSystemGetNVMLVersion(
    version: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    code(
        system_call("nvmlSystemGetNVMLVersion", |w, _| {
            Ok(format!("12.{}", w.driver_version))
        })
        // SAFETY: NVML contract: `version` is valid for `length` bytes.
        .and_then(|v| unsafe { put_str(version, length, &v) }),
    )
}

#[no_mangle]
pub unsafe extern "C" fn nvmlSystemGetCudaDriverVersion(version: *mut c_int) -> nvmlReturn_t {
    code(
        system_call("nvmlSystemGetCudaDriverVersion", |_, _| Ok(12040))
            // SAFETY: NVML contract: `version` is valid for a write.
            .and_then(|v| unsafe { put(version, v) }),
    )
}

#[no_mangle]
pub unsafe extern "C" fn nvmlSystemGetCudaDriverVersion_v2(version: *mut c_int) -> nvmlReturn_t {
    // SAFETY: same contract.
    unsafe { nvmlSystemGetCudaDriverVersion(version) }
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetCount_v2(count: *mut c_uint) -> nvmlReturn_t {
    code(
        system_call("nvmlDeviceGetCount_v2", |_, st| {
            c_uint::try_from(st.devices.len()).map_err(|_| UNKNOWN)
        })
        // SAFETY: NVML contract: `count` is valid for a write.
        .and_then(|n| unsafe { put(count, n) }),
    )
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetHandleByIndex_v2(
    index: c_uint,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    let r = (|| {
        let w = enter("nvmlDeviceGetHandleByIndex_v2", Some(index))?;
        let now = w.started.elapsed();
        let mut st = lock(&w.state);
        st.advance(now);
        if index as usize >= st.devices.len() {
            return Err(INVALID);
        }
        if let Some(c) = st.failure("nvmlDeviceGetHandleByIndex_v2", Some(index), now) {
            return Err(c);
        }
        Ok(handle(index))
    })();
    // SAFETY: NVML contract: `device` is valid for a write.
    code(r.and_then(|h| unsafe { put(device, h) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetHandleByUUID(
    uuid: *const c_char,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    if uuid.is_null() {
        return INVALID;
    }
    // SAFETY: NVML contract: `uuid` is a NUL-terminated string.
    let wanted = unsafe { CStr::from_ptr(uuid) }
        .to_string_lossy()
        .into_owned();
    let r = system_call("nvmlDeviceGetHandleByUUID", |_, st| {
        st.devices
            .iter()
            .position(|d| d.uuid == wanted)
            .and_then(|i| u32::try_from(i).ok())
            .map(handle)
            .ok_or(nvmlReturn_enum_NVML_ERROR_NOT_FOUND)
    });
    // SAFETY: NVML contract: `device` is valid for a write.
    code(r.and_then(|h| unsafe { put(device, h) }))
}

// ---- device queries ----------------------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetIndex(
    device: nvmlDevice_t,
    index: *mut c_uint,
) -> nvmlReturn_t {
    let r = device_call("nvmlDeviceGetIndex", device, |_, gpu| Ok(gpu));
    // SAFETY: NVML contract: `index` is valid for a write.
    code(r.and_then(|i| unsafe { put(index, i) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetUUID(
    device: nvmlDevice_t,
    uuid: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetUUID", device, |d| d.uuid.clone());
    // SAFETY: NVML contract: `uuid` is valid for `length` bytes.
    code(r.and_then(|s| unsafe { put_str(uuid, length, &s) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetName(
    device: nvmlDevice_t,
    name: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetName", device, |d| d.name.clone());
    // SAFETY: NVML contract: `name` is valid for `length` bytes.
    code(r.and_then(|s| unsafe { put_str(name, length, &s) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetTemperature(
    device: nvmlDevice_t,
    sensor_type: nvmlTemperatureSensors_t,
    temp: *mut c_uint,
) -> nvmlReturn_t {
    if sensor_type != nvmlTemperatureSensors_enum_NVML_TEMPERATURE_GPU {
        return INVALID;
    }
    let r = read_device("nvmlDeviceGetTemperature", device, |d| d.temperature_c);
    // SAFETY: NVML contract: `temp` is valid for a write.
    code(r.and_then(|t| unsafe { put(temp, t) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetPowerUsage(
    device: nvmlDevice_t,
    power: *mut c_uint,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetPowerUsage", device, |d| {
        (d.power_w.max(0.0) * 1000.0).round() as c_uint
    });
    // SAFETY: NVML contract: `power` is valid for a write.
    code(r.and_then(|p| unsafe { put(power, p) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo_v2(
    device: nvmlDevice_t,
    memory: *mut nvmlMemory_v2_t,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetMemoryInfo_v2", device, |d| {
        (d.memory_total_bytes, d.memory_used_bytes)
    });
    code(r.and_then(|(total, used)| {
        if memory.is_null() {
            return Err(INVALID);
        }
        // SAFETY: non-null and, by the NVML contract, valid for reads and writes of the
        // struct (the caller set `version`, which is kept).
        let version = unsafe { memory.read() }.version;
        let value = nvmlMemory_v2_t {
            version,
            total,
            reserved: 0,
            free: total.saturating_sub(used),
            used,
        };
        // SAFETY: as above.
        unsafe { put(memory, value) }
    }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo(
    device: nvmlDevice_t,
    memory: *mut nvmlMemory_t,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetMemoryInfo", device, |d| nvmlMemory_t {
        total: d.memory_total_bytes,
        free: d.memory_total_bytes.saturating_sub(d.memory_used_bytes),
        used: d.memory_used_bytes,
    });
    // SAFETY: NVML contract: `memory` is valid for a write.
    code(r.and_then(|m| unsafe { put(memory, m) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetTotalEccErrors(
    device: nvmlDevice_t,
    error_type: nvmlMemoryErrorType_t,
    counter_type: nvmlEccCounterType_t,
    ecc_counts: *mut c_ulonglong,
) -> nvmlReturn_t {
    let uncorrected = error_type == nvmlMemoryErrorType_enum_NVML_MEMORY_ERROR_TYPE_UNCORRECTED;
    let volatile = counter_type == nvmlEccCounterType_enum_NVML_VOLATILE_ECC;
    let r = read_device("nvmlDeviceGetTotalEccErrors", device, |d| {
        match (uncorrected, volatile) {
            (true, true) => d.ecc_volatile_uncorrected,
            (true, false) => d.ecc_aggregate_uncorrected,
            (false, true) => d.ecc_volatile_corrected,
            (false, false) => d.ecc_aggregate_corrected,
        }
    });
    // SAFETY: NVML contract: `ecc_counts` is valid for a write.
    code(r.and_then(|n| unsafe { put(ecc_counts, n) }))
}

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

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetRemappedRows(
    device: nvmlDevice_t,
    corr_rows: *mut c_uint,
    unc_rows: *mut c_uint,
    is_pending: *mut c_uint,
    failure_occurred: *mut c_uint,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetRemappedRows", device, |d| {
        d.remapped_rows.clone()
    });
    code(r.and_then(|rr| {
        // SAFETY: NVML contract: the four pointers are valid for writes.
        unsafe {
            put(corr_rows, rr.correctable)?;
            put(unc_rows, rr.uncorrectable)?;
            put(is_pending, c_uint::from(rr.pending))?;
            put(failure_occurred, c_uint::from(rr.failure))
        }
    }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetFieldValues(
    device: nvmlDevice_t,
    values_count: c_int,
    values: *mut nvmlFieldValue_t,
) -> nvmlReturn_t {
    let d = match read_device("nvmlDeviceGetFieldValues", device, Device::clone) {
        Ok(d) => d,
        Err(c) => return c,
    };
    let Ok(n) = usize::try_from(values_count) else {
        return INVALID;
    };
    if values.is_null() {
        return INVALID;
    }
    // SAFETY: NVML contract: `values` points to `values_count` initialised field values
    // (their `fieldId` set by the caller), which we own for the duration of the call.
    let values = unsafe { std::slice::from_raw_parts_mut(values, n) };
    let now = unix_us();
    for v in values.iter_mut() {
        let answer = if d.unsupported_fields.contains(&v.fieldId) {
            None
        } else {
            match v.fieldId {
                FI_REMAPPED_COR => Some(d.remapped_rows.correctable),
                FI_REMAPPED_UNC => Some(d.remapped_rows.uncorrectable),
                FI_REMAPPED_PENDING => Some(c_uint::from(d.remapped_rows.pending)),
                FI_REMAPPED_FAILURE => Some(c_uint::from(d.remapped_rows.failure)),
                FI_GPU_RECOVERY_ACTION => Some(d.recovery_action),
                _ => None,
            }
        };
        v.scopeId = 0;
        v.timestamp = now;
        v.latencyUsec = 0;
        v.valueType = nvmlValueType_enum_NVML_VALUE_TYPE_UNSIGNED_INT;
        v.nvmlReturn = if answer.is_some() {
            SUCCESS
        } else {
            NOT_SUPPORTED
        };
        v.value = nvmlValue_t {
            uiVal: answer.unwrap_or(0),
        };
    }
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetCurrentClocksThrottleReasons(
    device: nvmlDevice_t,
    reasons: *mut c_ulonglong,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetCurrentClocksThrottleReasons", device, |d| {
        d.throttle_reasons
    });
    // SAFETY: NVML contract: `reasons` is valid for a write.
    code(r.and_then(|b| unsafe { put(reasons, b) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetCurrentClocksEventReasons(
    device: nvmlDevice_t,
    reasons: *mut c_ulonglong,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetCurrentClocksEventReasons", device, |d| {
        d.throttle_reasons
    });
    // SAFETY: NVML contract: `reasons` is valid for a write.
    code(r.and_then(|b| unsafe { put(reasons, b) }))
}

#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetPcieReplayCounter(
    device: nvmlDevice_t,
    value: *mut c_uint,
) -> nvmlReturn_t {
    let r = read_device("nvmlDeviceGetPcieReplayCounter", device, |d| {
        d.pcie_replay_count
    });
    // SAFETY: NVML contract: `value` is valid for a write.
    code(r.and_then(|n| unsafe { put(value, n) }))
}

// ---- events ------------------------------------------------------------------------------

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

#[cfg(test)]
mod abi {
    //! Every export has exactly the type nvml-wrapper-sys loads it as.
    use std::marker::PhantomData;

    use nvml_wrapper_sys::bindings::NvmlLib;

    /// The type of one of `NvmlLib`'s symbols.
    struct Slot<T>(PhantomData<T>);

    fn slot<T, E>(_: fn(&NvmlLib) -> &Result<T, E>) -> Slot<T> {
        Slot(PhantomData)
    }

    impl<T> Slot<T> {
        /// Compiles only if `f` coerces to the symbol's type.
        fn holds(&self, _f: T) {}
    }

    #[test]
    fn exported_signatures_match_nvml_wrapper_sys() {
        use super::*;
        slot(|l| &l.nvmlInit_v2).holds(nvmlInit_v2);
        slot(|l| &l.nvmlInitWithFlags).holds(nvmlInitWithFlags);
        slot(|l| &l.nvmlShutdown).holds(nvmlShutdown);
        slot(|l| &l.nvmlErrorString).holds(nvmlErrorString);
        slot(|l| &l.nvmlSystemGetDriverVersion).holds(nvmlSystemGetDriverVersion);
        slot(|l| &l.nvmlSystemGetNVMLVersion).holds(nvmlSystemGetNVMLVersion);
        slot(|l| &l.nvmlSystemGetCudaDriverVersion).holds(nvmlSystemGetCudaDriverVersion);
        slot(|l| &l.nvmlSystemGetCudaDriverVersion_v2).holds(nvmlSystemGetCudaDriverVersion_v2);
        slot(|l| &l.nvmlDeviceGetCount_v2).holds(nvmlDeviceGetCount_v2);
        slot(|l| &l.nvmlDeviceGetHandleByIndex_v2).holds(nvmlDeviceGetHandleByIndex_v2);
        slot(|l| &l.nvmlDeviceGetHandleByUUID).holds(nvmlDeviceGetHandleByUUID);
        slot(|l| &l.nvmlDeviceGetIndex).holds(nvmlDeviceGetIndex);
        slot(|l| &l.nvmlDeviceGetUUID).holds(nvmlDeviceGetUUID);
        slot(|l| &l.nvmlDeviceGetName).holds(nvmlDeviceGetName);
        slot(|l| &l.nvmlDeviceGetTemperature).holds(nvmlDeviceGetTemperature);
        slot(|l| &l.nvmlDeviceGetPowerUsage).holds(nvmlDeviceGetPowerUsage);
        slot(|l| &l.nvmlDeviceGetMemoryInfo_v2).holds(nvmlDeviceGetMemoryInfo_v2);
        slot(|l| &l.nvmlDeviceGetMemoryInfo).holds(nvmlDeviceGetMemoryInfo);
        slot(|l| &l.nvmlDeviceGetTotalEccErrors).holds(nvmlDeviceGetTotalEccErrors);
        slot(|l| &l.nvmlDeviceGetRetiredPages).holds(nvmlDeviceGetRetiredPages);
        slot(|l| &l.nvmlDeviceGetRetiredPages_v2).holds(nvmlDeviceGetRetiredPages_v2);
        slot(|l| &l.nvmlDeviceGetRetiredPagesPendingStatus)
            .holds(nvmlDeviceGetRetiredPagesPendingStatus);
        slot(|l| &l.nvmlDeviceGetRemappedRows).holds(nvmlDeviceGetRemappedRows);
        slot(|l| &l.nvmlDeviceGetFieldValues).holds(nvmlDeviceGetFieldValues);
        slot(|l| &l.nvmlDeviceGetCurrentClocksThrottleReasons)
            .holds(nvmlDeviceGetCurrentClocksThrottleReasons);
        slot(|l| &l.nvmlDeviceGetCurrentClocksEventReasons)
            .holds(nvmlDeviceGetCurrentClocksEventReasons);
        slot(|l| &l.nvmlDeviceGetPcieReplayCounter).holds(nvmlDeviceGetPcieReplayCounter);
        slot(|l| &l.nvmlEventSetCreate).holds(nvmlEventSetCreate);
        slot(|l| &l.nvmlEventSetFree).holds(nvmlEventSetFree);
        slot(|l| &l.nvmlDeviceGetSupportedEventTypes).holds(nvmlDeviceGetSupportedEventTypes);
        slot(|l| &l.nvmlDeviceRegisterEvents).holds(nvmlDeviceRegisterEvents);
        slot(|l| &l.nvmlEventSetWait_v2).holds(nvmlEventSetWait_v2);
    }
}
