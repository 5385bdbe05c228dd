//! Reading one GPU: every NVML call the reading is made of.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nvml_wrapper::enum_wrappers::device::{
    EccCounter, MemoryError, RetirementCause, TemperatureSensor,
};
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::Nvml;

use super::fields::{
    FI_GPU_RECOVERY_ACTION, FI_REMAPPED_COR, FI_REMAPPED_FAILURE, FI_REMAPPED_PENDING,
    FI_REMAPPED_UNC,
};
use super::gpu_call::GpuCall;
use super::lock::lock;
use super::runner::Runner;
use crate::health::{GpuReading, RetiredPages};

#[derive(Clone)]
pub(super) struct Identity {
    pub(super) uuid: String,
    pub(super) name: String,
}

/// Reads GPU `index`. `identities` holds the identity last seen at each index: it stands in
/// when the GPU cannot be asked, and the name is read only when the UUID is new.
pub(super) fn read_gpu(
    nvml: &'static Nvml,
    runner: &Runner,
    identities: &Mutex<HashMap<u32, Identity>>,
    index: u32,
) -> GpuReading {
    let mut r = GpuCall {
        runner,
        index,
        reading: GpuReading {
            index,
            ..GpuReading::default()
        },
        stopped: None,
    };
    // The last identity seen at this index stands in when the GPU cannot be asked (lost).
    let cached = lock(identities).get(&index).cloned();
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
            lock(identities).insert(index, Identity { uuid, name });
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
