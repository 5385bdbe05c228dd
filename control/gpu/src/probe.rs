//! The probe abstraction: something that reads every GPU on the node.
//!
//! Implementations: [`crate::nvml::NvmlProbe`] (the real one, through NVML) and
//! [`crate::fake::FakeProbe`] (scripted, for tests).

use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::health::{NodeReading, XidEvent};

/// Reads the GPUs of one node.
///
/// `read` blocks (NVML calls are synchronous; the NVML probe bounds each call by its call
/// timeout, so a read takes at most about one call timeout per GPU): async callers run it on a
/// blocking thread (`tokio::task::spawn_blocking`).
pub trait GpuProbe: Send + Sync {
    /// Reads every GPU. A failure of one call on one GPU is not an error: it is recorded in
    /// that GPU's `errors` and `faults`. `Err` means the node as a whole could not be read (for
    /// example NVML could not even count the GPUs).
    fn read(&self) -> Result<NodeReading, ProbeError>;

    /// The stream of XID events as the driver reports them, for callers that want to react
    /// before the next `read`. Returns the receiver once; later calls return `None` (as does a
    /// probe without an event stream). Each event is also attached to the next reading
    /// (`GpuReading::xids`), so a caller that only reads loses nothing.
    fn xid_events(&self) -> Option<Receiver<XidEvent>>;
}

impl<P: GpuProbe + ?Sized> GpuProbe for Arc<P> {
    fn read(&self) -> Result<NodeReading, ProbeError> {
        (**self).read()
    }
    fn xid_events(&self) -> Option<Receiver<XidEvent>> {
        (**self).xid_events()
    }
}

impl<P: GpuProbe + ?Sized> GpuProbe for Box<P> {
    fn read(&self) -> Result<NodeReading, ProbeError> {
        (**self).read()
    }
    fn xid_events(&self) -> Option<Receiver<XidEvent>> {
        (**self).xid_events()
    }
}

/// Why a probe could not be created or could not read the node.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// NVML cannot be used here: no driver, no library, no permission. Carries the loader's or
    /// the driver's message.
    #[error("NVML not available: {0}")]
    NotAvailable(String),
    /// NVML is there but reading the node failed.
    #[error("reading the GPUs failed: {0}")]
    Failed(String),
}

/// Unix time in milliseconds (0 if the clock is before 1970).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
