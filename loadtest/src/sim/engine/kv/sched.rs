//! The vLLM-like scheduler: a batch of running requests holding KV blocks, and a FIFO
//! waiting queue.
//!
//! - A request is admitted from the head of the queue when the batch has room
//!   (`max_running`) and the pool can hold its tokens (prompt plus those generated before a
//!   preemption) and the next one it generates. The queue is strict FIFO: a head that does
//!   not fit blocks those behind it. (Reserving the next token's slot keeps a request that was
//!   just preempted for lack of a block from being readmitted before a block frees.)
//! - Each generated token may need one more block. When none is free, the newest running
//!   request is preempted (possibly the one asking): its blocks are freed and it goes back to
//!   the head of the queue, to recompute its prompt and generated tokens when readmitted.
//! - On admission the leading prompt blocks found in the prefix cache are hits; only the
//!   other tokens are prefilled.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use tokio::time::Instant;

use crate::sim::metrics::Metrics;

use super::pool::{Alloc, BlockPool};

/// Why a request was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The waiting queue holds `max_waiting` requests.
    QueueFull,
    /// Prompt plus output need more blocks than the whole pool (`needed` tokens against
    /// `capacity`).
    TooLong { needed: u64, capacity: u64 },
}

/// A request's admission into the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    pub at: Instant,
    /// Tokens the request holds on admission (prompt plus generated so far).
    pub tokens: u64,
    /// Of those, the tokens found in the prefix cache (no prefill needed).
    pub cached: u64,
}

enum State {
    Waiting,
    Running {
        alloc: Alloc,
        admission: Admission,
        seen: bool,
    },
}

struct Entry {
    hashes: Vec<u64>,
    prompt_tokens: u64,
    generated: u64,
    /// Tokens to generate in all.
    output: u64,
    state: State,
    waker: Option<Waker>,
}

impl Entry {
    fn tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.generated)
    }

    /// Tokens whose KV slots admission reserves: those held, plus the next to generate.
    fn reserved(&self) -> u64 {
        self.tokens()
            .saturating_add(u64::from(self.generated < self.output))
    }
}

/// Outcome of [`Scheduler::grow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grow {
    /// The token has its KV slot; the request keeps running.
    Ok,
    /// The request was preempted: it waits to be readmitted.
    Preempted,
}

/// Scheduler settings.
#[derive(Clone, Copy, Debug)]
pub struct SchedConfig {
    pub blocks: u64,
    pub block_size: u32,
    pub prefix_caching: bool,
    pub max_running: Option<usize>,
    pub max_waiting: usize,
}

/// The batch, the queue and the block pool of one engine.
pub struct Scheduler {
    pool: BlockPool,
    block_size: u64,
    max_running: usize,
    max_waiting: usize,
    next_id: u64,
    entries: HashMap<u64, Entry>,
    /// Running requests in admission order: the newest is last.
    running: Vec<u64>,
    waiting: VecDeque<u64>,
    metrics: Arc<Metrics>,
}

impl Scheduler {
    pub fn new(cfg: SchedConfig, metrics: Arc<Metrics>) -> Self {
        let sched = Self {
            pool: BlockPool::new(cfg.blocks, cfg.prefix_caching),
            block_size: u64::from(cfg.block_size.max(1)),
            max_running: cfg.max_running.unwrap_or(usize::MAX),
            max_waiting: cfg.max_waiting,
            next_id: 0,
            entries: HashMap::new(),
            running: Vec::new(),
            waiting: VecDeque::new(),
            metrics,
        };
        sched.publish();
        sched
    }

    fn blocks_for(&self, tokens: u64) -> u64 {
        tokens.div_ceil(self.block_size).max(1)
    }

    /// Queues a request whose prompt has `prompt_tokens` tokens, full-block `hashes` and
    /// `output` tokens to generate, and admits what fits. Returns its id.
    pub fn enqueue(
        &mut self,
        hashes: Vec<u64>,
        prompt_tokens: u64,
        output: u64,
    ) -> Result<u64, Refusal> {
        let needed = prompt_tokens.saturating_add(output);
        let capacity = self.pool.total().saturating_mul(self.block_size);
        if self.blocks_for(needed) > self.pool.total() {
            return Err(Refusal::TooLong { needed, capacity });
        }
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(
            id,
            Entry {
                hashes,
                prompt_tokens,
                generated: 0,
                output,
                state: State::Waiting,
                waker: None,
            },
        );
        self.waiting.push_back(id);
        self.schedule();
        let queued = matches!(
            self.entries.get(&id).map(|e| &e.state),
            Some(State::Waiting)
        );
        if queued && self.waiting.len() > self.max_waiting {
            self.waiting.retain(|w| *w != id);
            self.entries.remove(&id);
            self.publish();
            return Err(Refusal::QueueFull);
        }
        self.publish();
        Ok(id)
    }

    /// Admits requests from the head of the queue while they fit.
    fn schedule(&mut self) {
        while let Some(&id) = self.waiting.front() {
            if self.running.len() >= self.max_running {
                break;
            }
            let Some(entry) = self.entries.get(&id) else {
                self.waiting.pop_front();
                continue;
            };
            let tokens = entry.tokens();
            let blocks = self.blocks_for(entry.reserved());
            let Some((alloc, hits)) = self.pool.allocate(&entry.hashes, blocks) else {
                break;
            };
            self.waiting.pop_front();
            // Like vLLM, the last token is always computed, even on a full hit.
            let cached = (hits as u64)
                .saturating_mul(self.block_size)
                .min(tokens.saturating_sub(1));
            self.metrics.prefix_cache_query(entry.prompt_tokens, cached);
            let admission = Admission {
                at: Instant::now(),
                tokens,
                cached,
            };
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.state = State::Running {
                    alloc,
                    admission,
                    seen: false,
                };
                if let Some(waker) = entry.waker.take() {
                    waker.wake();
                }
            }
            self.running.push(id);
        }
    }

    /// Ready with the admission once request `id` runs (once per admission); pending while
    /// it waits.
    pub fn poll_admitted(&mut self, id: u64, cx: &mut Context<'_>) -> Poll<Admission> {
        let Some(entry) = self.entries.get_mut(&id) else {
            return Poll::Pending;
        };
        match &mut entry.state {
            State::Running {
                admission, seen, ..
            } if !*seen => {
                *seen = true;
                Poll::Ready(*admission)
            }
            _ => {
                entry.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Whether request `id` still runs (`false` once preempted); it is woken when preempted.
    pub fn still_running(&mut self, id: u64, cx: &mut Context<'_>) -> bool {
        let Some(entry) = self.entries.get_mut(&id) else {
            return false;
        };
        entry.waker = Some(cx.waker().clone());
        matches!(entry.state, State::Running { .. })
    }

    /// Request `id` produced one more token: gives it a new block when its blocks are full,
    /// preempting the newest running requests (itself included) while none is free.
    pub fn grow(&mut self, id: u64) -> Grow {
        let block_size = self.block_size;
        let Some(entry) = self.entries.get_mut(&id) else {
            return Grow::Preempted;
        };
        let State::Running { alloc, .. } = &mut entry.state else {
            return Grow::Preempted;
        };
        entry.generated += 1;
        let tokens = entry.prompt_tokens.saturating_add(entry.generated);
        if tokens <= alloc.blocks().saturating_mul(block_size) {
            return Grow::Ok;
        }
        let mut alloc = std::mem::take(alloc);
        let outcome = loop {
            if self.pool.grow(&mut alloc) {
                break Grow::Ok;
            }
            match self.running.last() {
                Some(&victim) if victim != id => self.preempt(victim),
                _ => break Grow::Preempted,
            }
        };
        if let Some(State::Running { alloc: slot, .. }) =
            self.entries.get_mut(&id).map(|e| &mut e.state)
        {
            *slot = alloc;
        }
        if outcome == Grow::Preempted {
            // The token was not produced: it is generated again after readmission.
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.generated = entry.generated.saturating_sub(1);
            }
            self.preempt(id);
        }
        self.schedule();
        self.publish();
        outcome
    }

    /// Frees `id`'s blocks and puts it back at the head of the queue.
    fn preempt(&mut self, id: u64) {
        self.running.retain(|r| *r != id);
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        if let State::Running { alloc, .. } = std::mem::replace(&mut entry.state, State::Waiting) {
            self.pool.release(alloc);
        }
        if let Some(waker) = entry.waker.take() {
            waker.wake();
        }
        self.waiting.push_front(id);
        self.metrics.preempted();
    }

    /// Request `id` ended (finished or gone): frees its blocks or its place in the queue,
    /// and admits what now fits.
    pub fn release(&mut self, id: u64) {
        if let Some(entry) = self.entries.remove(&id) {
            match entry.state {
                State::Running { alloc, .. } => {
                    self.running.retain(|r| *r != id);
                    self.pool.release(alloc);
                }
                State::Waiting => self.waiting.retain(|w| *w != id),
            }
        }
        self.schedule();
        self.publish();
    }

    /// Copies the batch, queue and pool state to the metrics.
    fn publish(&self) {
        self.metrics.running.set(gauge(self.running.len()));
        self.metrics.waiting.set(gauge(self.waiting.len()));
        self.metrics.set_block_usage(self.pool.usage());
    }

    /// Cached blocks in the pool (held or evictable).
    #[cfg(test)]
    pub fn cached_blocks(&self) -> usize {
        self.pool.cached_blocks()
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
