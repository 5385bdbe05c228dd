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
mod call;
mod codes;
mod device;
mod events;
mod fields;
mod init;
mod out;
mod retired;
mod scenario;
mod signals;
mod state;
mod system;
mod world;

pub use device::*;
pub use events::*;
pub use fields::*;
pub use init::*;
pub use retired::*;
pub use signals::*;
pub use state::SCENARIO_ENV;
pub use system::*;

#[cfg(test)]
mod abi;
