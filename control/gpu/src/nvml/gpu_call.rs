//! [`GpuCall`]: one GPU's calls during one reading, and what their failures mean.

use std::collections::HashMap;

use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::FieldValueSample;

use super::call::CallError;
use super::fields::{
    field_name, recovery_action, sample_u64, FI_GPU_RECOVERY_ACTION, FI_REMAPPED_COR,
    FI_REMAPPED_FAILURE, FI_REMAPPED_PENDING, FI_REMAPPED_UNC,
};
use super::runner::Runner;
use crate::health::{CallFault, GpuReading, RemappedRows};

/// One GPU's calls during one reading.
pub(super) struct GpuCall<'a> {
    pub(super) runner: &'a Runner,
    pub(super) index: u32,
    pub(super) reading: GpuReading,
    /// Set when a call failed in a way that makes the remaining calls pointless (timeout,
    /// GPU lost): the function's name.
    pub(super) stopped: Option<&'static str>,
}

impl GpuCall<'_> {
    fn fault(&mut self, fault: CallFault, message: String) {
        self.reading.errors.push(message);
        if !self.reading.faults.contains(&fault) {
            self.reading.faults.push(fault);
        }
    }

    /// Makes one bounded call; records failures; `None` for failures and "not supported".
    pub(super) fn get<T, F>(&mut self, name: &'static str, f: F) -> Option<T>
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

    pub(super) fn apply_field_values(&mut self, samples: Vec<Result<FieldValueSample, NvmlError>>) {
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

    pub(super) fn finish(mut self) -> GpuReading {
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
