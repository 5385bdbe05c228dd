//! A request's place in the KV-cache scheduler, released when dropped.

use std::sync::{Arc, MutexGuard};
use std::task::{Context, Poll};

use super::capacity::Engine;
use super::kv::{Admission, Grow, Scheduler};

/// Request `id` in the engine's scheduler: queued or running until dropped.
pub struct Ticket {
    engine: Arc<Engine>,
    id: u64,
}

impl Engine {
    /// The KV-cache scheduler, when the engine models one. A poisoned lock is taken over:
    /// the scheduler's state stays consistent between its calls.
    pub(super) fn scheduler(&self) -> Option<MutexGuard<'_, Scheduler>> {
        self.kv
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl Ticket {
    pub fn new(engine: Arc<Engine>, id: u64) -> Self {
        Self { engine, id }
    }

    /// Ready once the request is admitted (again, after a preemption).
    pub fn poll_admitted(&self, cx: &mut Context<'_>) -> Poll<Admission> {
        match self.engine.scheduler() {
            Some(mut sched) => sched.poll_admitted(self.id, cx),
            None => Poll::Pending,
        }
    }

    /// Whether the request still runs; the task is woken when it is preempted.
    pub fn still_running(&self, cx: &mut Context<'_>) -> bool {
        self.engine
            .scheduler()
            .is_some_and(|mut sched| sched.still_running(self.id, cx))
    }

    /// Takes the KV slot of one more generated token.
    pub fn grow(&self) -> Grow {
        match self.engine.scheduler() {
            Some(mut sched) => sched.grow(self.id),
            None => Grow::Preempted,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(mut sched) = self.engine.scheduler() {
            sched.release(self.id);
        }
    }
}
