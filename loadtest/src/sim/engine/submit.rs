//! Admission: a request runs at once, joins the queue, or is refused.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::sim::error::ApiError;
use crate::sim::timing;

use super::capacity::Engine;
use super::job::Job;
use super::queue::{Acquire, WaitingGuard};
use super::run::Run;

impl Engine {
    /// Admits `job`: it runs at once when a slot is free, else it joins the queue; with the
    /// queue full it is refused with 429. Must be called inside a tokio runtime.
    pub fn submit(self: &Arc<Self>, mut job: Job) -> Result<Run, ApiError> {
        let ttft = self
            .ttft
            .sample(&mut job.rng)
            .saturating_add(timing::prefill(
                self.prefill_per_1k_tokens,
                job.prompt_tokens,
            ));
        let arrival = job.arrival;
        let mut run = Run::new(Arc::clone(self), job, ttft);
        let Some(slots) = &self.slots else {
            run.start(None, arrival);
            return Ok(run);
        };
        let mut acquire: Acquire = Box::pin(Arc::clone(slots).acquire_owned());
        // One poll joins the FIFO queue now, in arrival order (the request's own task will
        // poll again with its real waker).
        match acquire
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(Ok(permit)) => {
                run.start(Some(permit), arrival);
                Ok(run)
            }
            // The semaphore is never closed; should it be, run unthrottled.
            Poll::Ready(Err(_)) => {
                run.start(None, arrival);
                Ok(run)
            }
            Poll::Pending => {
                let before = self.waiting.fetch_add(1, Ordering::Relaxed);
                if before >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::Relaxed);
                    // Dropping `run` here must not count an abort: it never entered.
                    run.refuse();
                    return Err(ApiError::overloaded(self.max_waiting));
                }
                self.metrics.waiting.inc();
                let waiting = WaitingGuard {
                    engine: Arc::clone(self),
                };
                run.queue(acquire, waiting);
                Ok(run)
            }
        }
    }
}
