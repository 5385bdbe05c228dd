//! A running slot held by one request.

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use super::capacity::Engine;

/// A running slot: counts the request as running and holds its KV-cache tokens.
pub struct Slot {
    engine: Arc<Engine>,
    _permit: Option<OwnedSemaphorePermit>,
    kv_tokens: u64,
}

impl Slot {
    pub fn new(
        engine: Arc<Engine>,
        permit: Option<OwnedSemaphorePermit>,
        prompt_tokens: u64,
    ) -> Self {
        engine.metrics.running.inc();
        engine.metrics.kv_acquire(prompt_tokens);
        Self {
            engine,
            _permit: permit,
            kv_tokens: prompt_tokens,
        }
    }

    pub fn add_token(&mut self) {
        self.engine.metrics.kv_acquire(1);
        self.kv_tokens = self.kv_tokens.saturating_add(1);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.engine.metrics.running.dec();
        self.engine.metrics.kv_release(self.kv_tokens);
    }
}
