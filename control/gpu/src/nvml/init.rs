//! Loading and initialising NVML, once per library path and process.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;

use super::call::human_duration;
use super::lock::lock;
use crate::probe::ProbeError;

/// `nvmlInit` can take seconds per GPU without persistence mode: it gets at least this long.
const MIN_INIT_TIMEOUT: Duration = Duration::from_secs(30);

/// NVML instances, one per library path, initialised once and kept for the life of the
/// process (`Device<'static>` needs a `&'static Nvml`).
static INSTANCES: Mutex<Vec<(Option<PathBuf>, &'static Nvml)>> = Mutex::new(Vec::new());

pub(super) fn init_nvml(
    lib_path: Option<&Path>,
    timeout: Duration,
) -> Result<&'static Nvml, ProbeError> {
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
