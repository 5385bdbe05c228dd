//! Admission: a request runs at once, joins the queue, or is refused.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::sim::error::ApiError;

use super::capacity::Engine;
use super::job::Job;
use super::kv::Refusal;
use super::queue::{Acquire, WaitingGuard};
use super::run::Run;
use super::ticket::Ticket;

impl Engine {
    /// Admits `job`: it runs at once when a slot is free, else it joins the queue; with the
    /// queue full it is refused with 429. With a KV model, a request whose prompt and output
    /// exceed the whole cache is refused with 400. Must be called inside a tokio runtime.
    pub fn submit(self: &Arc<Self>, mut job: Job) -> Result<Run, ApiError> {
        let ttft = self.ttft.sample(&mut job.rng);
        let arrival = job.arrival;
        let hashes = std::mem::take(&mut job.prefix_hashes);
        let (prompt_tokens, output) = (job.prompt_tokens, u64::from(job.tokens));
        let mut run = Run::new(Arc::clone(self), job, ttft);
        if let Some(mut sched) = self.scheduler() {
            let queued = sched.enqueue(hashes, prompt_tokens, output);
            drop(sched);
            return match queued {
                Ok(id) => {
                    run.schedule(Ticket::new(Arc::clone(self), id));
                    Ok(run)
                }
                Err(refusal) => {
                    run.refuse();
                    Err(refused(refusal, self.max_waiting, prompt_tokens, output))
                }
            };
        }
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

/// The error answered for a request the KV-cache scheduler did not queue.
fn refused(refusal: Refusal, max_waiting: usize, prompt: u64, output: u64) -> ApiError {
    match refusal {
        Refusal::QueueFull => ApiError::overloaded(max_waiting),
        Refusal::TooLong { needed, capacity } => ApiError::bad_request(format!(
            "This model's maximum context length is {capacity} tokens (the simulated KV cache). \
             However, you requested {needed} tokens ({prompt} in the messages, {output} in the \
             completion). Please reduce the length of the messages or completion."
        )),
    }
}
