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

use super::capacity::Engine;
use super::job::{Cut, Job, Tick};
use super::queue::{Acquire, WaitingGuard};
use super::slot::Slot;

enum State {
    /// Waiting for a slot.
    Queued {
        acquire: Acquire,
        _waiting: WaitingGuard,
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
    ttft: Duration,
    state: State,
    sleep: Pin<Box<Sleep>>,
    slot: Option<Slot>,
    finished: bool,
}

impl Run {
    /// A run of `job` whose first token comes `ttft` after it gets a slot; it is neither
    /// running nor queued yet.
    pub(super) fn new(engine: Arc<Engine>, job: Job, ttft: Duration) -> Self {
        Self {
            engine,
            arrival: job.arrival,
            prompt_tokens: job.prompt_tokens,
            tokens: job.tokens,
            cut: job.cut,
            rng: job.rng,
            ttft,
            state: State::Done,
            sleep: Box::pin(tokio::time::sleep_until(job.arrival)),
            slot: None,
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
        let due = at.checked_add(self.ttft).unwrap_or(at);
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
        // Free the slot for the next request in the queue.
        self.slot = None;
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
                State::Token { index, due, prev } => {
                    let (index, due, prev) = (*index, *due, *prev);
                    if let Some(cut) = self.cut.filter(|c| c.after == index) {
                        if cut.drop {
                            // Drop when the next token would have been sent.
                            ready!(self.sleep_until(due, cx));
                        }
                        self.state = Self::cut_state(cut);
                        continue;
                    }
                    ready!(self.sleep_until(due, cx));
                    let metrics = Arc::clone(&self.engine.metrics);
                    if index == 0 {
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
