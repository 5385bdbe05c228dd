//! Stable Diffusion WebUI's shared state: its job queue and the progress of the job being
//! sampled.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

/// The WebUI's job queue and the progress of the job being sampled.
#[derive(Default)]
pub struct SdState {
    pub exec: tokio::sync::Mutex<()>,
    /// Jobs queued or running.
    pub jobs: AtomicU64,
    /// `(step done, steps)` of the job being sampled.
    progress: Mutex<Option<(u32, u32)>>,
}

impl SdState {
    pub fn set_progress(&self, progress: Option<(u32, u32)>) {
        *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = progress;
    }

    pub fn progress(&self) -> Option<(u32, u32)> {
        *self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }
}
