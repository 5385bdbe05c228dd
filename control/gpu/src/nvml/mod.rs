//! The real probe: reads the GPUs through NVML (`libnvidia-ml.so.1`, loaded at run time by
//! nvml-wrapper, so the binary builds and starts on machines without a driver).
//!
//! Every NVML call runs on a worker thread and is given up after the call timeout: a call that does
//! not answer becomes an entry in the GPU's `errors` (`"nvmlDeviceGetTemperature did not answer
//! within 2s"`) with the fault [`CallFault::Timeout`](crate::health::CallFault::Timeout), the rest
//! of that GPU's calls are skipped for this reading, and the next call gets a fresh worker thread.
//! The hung call keeps its thread; until it returns, the same function is not called again on the
//! same GPU (the reading says it is still hung), so a wedged driver costs at most one thread per
//! function and GPU, and one call timeout per GPU and reading.
//!
//! XID events are waited for on a dedicated thread (an NVML event set with `CRITICAL_XID_ERROR`
//! registered on every GPU that supports it). Each event goes to the receiver returned by
//! [`GpuProbe::xid_events`](crate::probe::GpuProbe::xid_events) and is attached to the next
//! reading. NVML reports only the most recent XID per wait, so XIDs in quick succession on one GPU
//! can collapse into the last one.

mod call;
mod events;
mod fields;
mod gpu_call;
mod init;
mod lock;
mod probe;
mod read;
mod runner;

pub use probe::NvmlProbe;

#[cfg(test)]
mod tests;
