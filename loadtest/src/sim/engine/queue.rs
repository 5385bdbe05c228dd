//! The waiting queue: a pending slot acquisition, and the guard that counts it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::{AcquireError, OwnedSemaphorePermit};

use super::capacity::Engine;

/// A request's place in the FIFO queue for a running slot.
pub type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// Counts a request in the queue while it lives.
pub struct WaitingGuard {
    pub engine: Arc<Engine>,
}

impl Drop for WaitingGuard {
    fn drop(&mut self) {
        self.engine.waiting.fetch_sub(1, Ordering::Relaxed);
        self.engine.metrics.waiting.dec();
    }
}
