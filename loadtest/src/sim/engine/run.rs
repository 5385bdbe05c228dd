//! One request's run through the engine: the state machine that produces its ticks.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use rand::rngs::SmallRng;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use crate::sim::metrics::Finish;
use crate::sim::timing;

use super::capacity::Engine;
use super::job::{Cut, Job, Tick};
use super::kv::{Admission, Grow};
use super::queue::{Acquire, WaitingGuard};
use super::slot::Slot;
use super::ticket::Ticket;

enum State {
    /// Waiting for a slot.
    Queued {
        acquire: Acquire,
        _waiting: WaitingGuard,
    },
    /// Waiting in the KV-cache scheduler's queue, first or again after a preemption, to
    /// go on with token `index`; `prev` is when the previous token was.
    Scheduled {
        index: u32,
        prev: Option<Instant>,
    },
    /// Token `index` (or, with no tokens, the end of prefill) is due at `due`; `prev` is
    /// when the previous token was.
    Token {
        index: u32,
        due: Instant,
        prev: Option<Instant>,
    },
    /// All tokens produced; a cut at or beyond the output length applies now.
    AfterLast,
    /// Stalled by a cut: nothing more, ever.
    Stalled,
    /// Dropped by a cut; `yielded` once so that what was sent gets flushed first.
    Dropping {
        yielded: bool,
    },
    Done,
}

/// One request in the engine. Dropping it (client gone) leaves the queue or frees the slot,
/// and counts an abort unless it had finished.
pub struct Run {
    engine: Arc<Engine>,
    arrival: Instant,
    prompt_tokens: u64,
    tokens: u32,
    cut: Option<Cut>,
    rng: SmallRng,
    /// The drawn time to first token, before prefill.
    base_ttft: Duration,
    state: State,
    sleep: Pin<Box<Sleep>>,
    slot: Option<Slot>,
    ticket: Option<Ticket>,
    finished: bool,
}

impl Run {
    /// A run of `job` whose first token comes `base_ttft` plus the prefill of its uncached
    /// prompt tokens after it gets a slot; it is neither running nor queued yet.
    pub(super) fn new(engine: Arc<Engine>, job: Job, base_ttft: Duration) -> Self {
        Self {
            engine,
            arrival: job.arrival,
            prompt_tokens: job.prompt_tokens,
            tokens: job.tokens,
            cut: job.cut,
            rng: job.rng,
            base_ttft,
            state: State::Done,
            sleep: Box::pin(tokio::time::sleep_until(job.arrival)),
            slot: None,
            ticket: None,
            finished: false,
        }
    }

    /// Waits in the queue for a slot.
    pub(super) fn queue(&mut self, acquire: Acquire, waiting: WaitingGuard) {
        self.state = State::Queued {
            acquire,
            _waiting: waiting,
        };
    }

    /// Waits in the KV-cache scheduler's queue under `ticket`.
    pub(super) fn schedule(&mut self, ticket: Ticket) {
        self.ticket = Some(ticket);
        self.state = State::Scheduled {
            index: 0,
            prev: None,
        };
    }

    /// The time from getting a slot to the next token, when `uncached` tokens need prefill.
    fn ttft(&self, uncached: u64) -> Duration {
        self.base_ttft
            .saturating_add(timing::prefill(self.engine.prefill_per_1k_tokens, uncached))
    }

    /// Admitted by the KV-cache scheduler: token `index` follows the prefill of every token
    /// held that the prefix cache did not have.
    fn resume(&mut self, admission: Admission, index: u32, prev: Option<Instant>) {
        let uncached = admission.tokens.saturating_sub(admission.cached);
        let at = admission.at;
        let due = at.checked_add(self.ttft(uncached)).unwrap_or(at);
        self.state = State::Token { index, due, prev };
    }

    /// Marks a run that never entered the engine, so that dropping it counts no abort.
    pub(super) fn refuse(&mut self) {
        self.finished = true;
    }

    /// Takes a slot at `at`; the first token is due `ttft` later.
    pub(super) fn start(&mut self, permit: Option<OwnedSemaphorePermit>, at: Instant) {
        self.slot = Some(Slot::new(
            Arc::clone(&self.engine),
            permit,
            self.prompt_tokens,
        ));
        let due = at.checked_add(self.ttft(self.prompt_tokens)).unwrap_or(at);
        self.state = State::Token {
            index: 0,
            due,
            prev: None,
        };
    }

    fn sleep_until(&mut self, deadline: Instant, cx: &mut Context<'_>) -> Poll<()> {
        if self.sleep.deadline() != deadline {
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }

    fn finish(&mut self, finish: Finish, at: Instant) {
        let metrics = &self.engine.metrics;
        metrics.observe_e2e(at.saturating_duration_since(self.arrival));
        metrics.finished(finish);
        self.finished = true;
        // Free the slot (or the KV blocks) for the next request in the queue.
        self.slot = None;
        self.ticket = None;
    }

    /// The state a cut leads to.
    fn cut_state(cut: Cut) -> State {
        if cut.drop {
            State::Dropping { yielded: false }
        } else {
            State::Stalled
        }
    }

    /// The next thing this run produces, when it is due.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Tick> {
        loop {
            match &mut self.state {
                State::Queued { acquire, .. } => {
                    let permit = ready!(acquire.as_mut().poll(cx)).ok();
                    self.start(permit, Instant::now());
                }
                State::Scheduled { index, prev } => {
                    let (index, prev) = (*index, *prev);
                    let Some(ticket) = &self.ticket else {
                        self.state = State::Done;
                        continue;
                    };
                    let admission = ready!(ticket.poll_admitted(cx));
                    self.resume(admission, index, prev);
                }
                State::Token { index, due, prev } => {
                    let (index, due, prev) = (*index, *due, *prev);
                    if let Some(ticket) = &self.ticket {
                        if !ticket.still_running(cx) {
                            self.state = State::Scheduled { index, prev };
                            continue;
                        }
                    }
                    if let Some(cut) = self.cut.filter(|c| c.after == index) {
                        if cut.drop {
                            // Drop when the next token would have been sent.
                            ready!(self.sleep_until(due, cx));
                        }
                        self.state = Self::cut_state(cut);
                        continue;
                    }
                    ready!(self.sleep_until(due, cx));
                    if self.tokens > 0 {
                        if let Some(ticket) = &self.ticket {
                            if ticket.grow() == Grow::Preempted {
                                self.state = State::Scheduled { index, prev };
                                continue;
                            }
                        }
                    }
                    let metrics = Arc::clone(&self.engine.metrics);
                    if index == 0 && prev.is_none() {
                        metrics.add_prompt_tokens(self.prompt_tokens);
                    }
                    if self.tokens == 0 {
                        // Prefill only (embeddings).
                        self.finish(Finish::Stop, due);
                        self.state = State::AfterLast;
                        continue;
                    }
                    match prev {
                        None => metrics.observe_ttft(due.saturating_duration_since(self.arrival)),
                        Some(prev) => metrics.observe_itl(due.saturating_duration_since(prev)),
                    }
                    metrics.add_generation_token();
                    if let Some(slot) = &mut self.slot {
                        slot.add_token();
                    }
                    let last = index.saturating_add(1) >= self.tokens;
                    if last {
                        self.finish(Finish::Length, due);
                        self.state = State::AfterLast;
                    } else {
                        let gap = self.engine.itl.sample(&mut self.rng);
                        self.state = State::Token {
                            index: index.saturating_add(1),
                            due: due.checked_add(gap).unwrap_or(due),
                            prev: Some(due),
                        };
                    }
                    return Poll::Ready(Tick::Token { index, last });
                }
                State::AfterLast => {
                    self.state = match self.cut {
                        Some(cut) => Self::cut_state(cut),
                        None => State::Done,
                    };
                }
                State::Stalled => return Poll::Pending,
                State::Dropping { yielded } => {
                    if *yielded {
                        self.state = State::Done;
                        self.slot = None;
                        self.ticket = None;
                        if !self.finished {
                            self.finished = true;
                            self.engine.metrics.finished(Finish::Abort);
                        }
                        return Poll::Ready(Tick::Aborted);
                    }
                    *yielded = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                State::Done => return Poll::Ready(Tick::Done),
            }
        }
    }

    /// Polls until the run is done: `true` when complete, `false` when aborted by a cut.
    /// Never completes when stalled.
    pub async fn complete(&mut self) -> bool {
        loop {
            match std::future::poll_fn(|cx| self.poll_tick(cx)).await {
                Tick::Token { .. } => {}
                Tick::Done => return true,
                Tick::Aborted => return false,
            }
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if !self.finished {
            self.engine.metrics.finished(Finish::Abort);
        }
    }
}
