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
