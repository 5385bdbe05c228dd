//! The simulated inference engine: running slots, the FIFO waiting queue, and the token
//! schedule of each request, with vLLM's metrics recorded along the way.
//!
//! A request submitted to the [`Engine`] becomes a [`Run`]. With free capacity (or no limit)
//! it runs at once; otherwise it waits in a FIFO queue (at most `max_waiting` deep, beyond
//! which it is refused with 429) and its clock starts when it gets a slot:
//!
//! | event                 | due at                                                        |
//! |-----------------------|---------------------------------------------------------------|
//! | token 0               | `slot + ttft_draw + prefill_per_1k * prompt_tokens / 1000`    |
//! | token `i + 1`         | `due(i) + itl_draw`                                           |
//!
//! Deadlines are absolute, so a late poll does not push later tokens back (no drift). The
//! slot, and the KV-cache tokens the request holds (prompt plus generated so far), are
//! released when its last token is produced or when the run is dropped (client gone).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use rand::rngs::SmallRng;
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use super::error::ApiError;
use super::metrics::{Finish, Metrics};
use super::timing::{self, Latency};

type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// Capacity, timing and metrics shared by all requests of one simulator.
pub struct Engine {
    slots: Option<Arc<Semaphore>>,
    max_waiting: usize,
    waiting: AtomicUsize,
    ttft: Latency,
    itl: Latency,
    prefill_per_1k_tokens: Duration,
    metrics: Arc<Metrics>,
}

/// Settings of an [`Engine`].
pub struct EngineConfig {
    pub max_running: Option<usize>,
    pub max_waiting: usize,
    pub ttft: Latency,
    pub itl: Latency,
    pub prefill_per_1k_tokens: Duration,
}

/// Where a fault cuts a run short: after `after` tokens, stall (never produce anything
/// more) or drop (report [`Tick::Aborted`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cut {
    pub after: u32,
    pub drop: bool,
}

/// What a request asks of the engine.
pub struct Job {
    /// When the request arrived (TTFT and e2e latency are measured from here).
    pub arrival: Instant,
    pub prompt_tokens: u64,
    /// Output tokens; 0 for a prefill-only request (embeddings).
    pub tokens: u32,
    pub cut: Option<Cut>,
    /// The request's own random draws.
    pub rng: SmallRng,
}

/// What a [`Run`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tick {
    /// Output token `index` is due; `last` for the final one.
    Token { index: u32, last: bool },
    /// The run is complete (after the last token, or after prefill when it has none).
    Done,
    /// A `drop` cut: the response must be aborted.
    Aborted,
}

impl Engine {
    /// Fails when `max_running` is `Some(0)`.
    pub fn new(cfg: EngineConfig, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let slots = match cfg.max_running {
            Some(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "max_running must be at least 1",
                ))
            }
            Some(n) => Some(Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS)))),
            None => None,
        };
        Ok(Self {
            slots,
            max_waiting: cfg.max_waiting,
            waiting: AtomicUsize::new(0),
            ttft: cfg.ttft,
            itl: cfg.itl,
            prefill_per_1k_tokens: cfg.prefill_per_1k_tokens,
            metrics,
        })
    }

    #[cfg(test)]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

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
        let mut run = Run {
            engine: Arc::clone(self),
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
        };
        let Some(slots) = &self.slots else {
            run.start(None, job.arrival);
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
                run.start(Some(permit), job.arrival);
                Ok(run)
            }
            // The semaphore is never closed; should it be, run unthrottled.
            Poll::Ready(Err(_)) => {
                run.start(None, job.arrival);
                Ok(run)
            }
            Poll::Pending => {
                let before = self.waiting.fetch_add(1, Ordering::Relaxed);
                if before >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::Relaxed);
                    // Dropping `run` here must not count an abort: it never entered.
                    run.finished = true;
                    return Err(ApiError::overloaded(self.max_waiting));
                }
                self.metrics.waiting.inc();
                run.state = State::Queued {
                    acquire,
                    _waiting: WaitingGuard {
                        engine: Arc::clone(self),
                    },
                };
                Ok(run)
            }
        }
    }
}

/// Counts a request in the queue while it lives.
struct WaitingGuard {
    engine: Arc<Engine>,
}

impl Drop for WaitingGuard {
    fn drop(&mut self) {
        self.engine.waiting.fetch_sub(1, Ordering::Relaxed);
        self.engine.metrics.waiting.dec();
    }
}

/// A running slot: counts the request as running and holds its KV-cache tokens.
struct Slot {
    engine: Arc<Engine>,
    _permit: Option<OwnedSemaphorePermit>,
    kv_tokens: u64,
}

impl Slot {
    fn new(engine: Arc<Engine>, permit: Option<OwnedSemaphorePermit>, prompt_tokens: u64) -> Self {
        engine.metrics.running.inc();
        engine.metrics.kv_acquire(prompt_tokens);
        Self {
            engine,
            _permit: permit,
            kv_tokens: prompt_tokens,
        }
    }

    fn add_token(&mut self) {
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
    /// Takes a slot at `at`; the first token is due `ttft` later.
    fn start(&mut self, permit: Option<OwnedSemaphorePermit>, at: Instant) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const MS: Duration = Duration::from_millis(1);

    fn engine(max_running: Option<usize>, max_waiting: usize) -> Arc<Engine> {
        let cfg = EngineConfig {
            max_running,
            max_waiting,
            ttft: Latency::new(100 * MS, Duration::ZERO),
            itl: Latency::new(10 * MS, Duration::ZERO),
            prefill_per_1k_tokens: 50 * MS,
        };
        let metrics = Arc::new(Metrics::new("m", 1000).unwrap());
        Arc::new(Engine::new(cfg, metrics).unwrap())
    }

    fn job(tokens: u32, prompt_tokens: u64, cut: Option<Cut>) -> Job {
        Job {
            arrival: Instant::now(),
            prompt_tokens,
            tokens,
            cut,
            rng: SmallRng::seed_from_u64(1),
        }
    }

    /// Every tick with its (virtual) time since `start`.
    async fn ticks(run: &mut Run, start: Instant) -> Vec<(Duration, Tick)> {
        let mut out = Vec::new();
        loop {
            let tick = std::future::poll_fn(|cx| run.poll_tick(cx)).await;
            out.push((start.elapsed(), tick));
            if tick == Tick::Done || tick == Tick::Aborted {
                return out;
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_fall_due_after_ttft_plus_prefill_then_every_itl() {
        let e = engine(None, 0);
        let start = Instant::now();
        let mut run = e.submit(job(3, 2000, None)).unwrap();
        assert_eq!(e.metrics().running.get(), 1);
        assert_eq!(e.metrics().kv_usage(), 1.0);
        let t = ticks(&mut run, start).await;
        let token = |index, last| Tick::Token { index, last };
        assert_eq!(
            t,
            vec![
                (200 * MS, token(0, false)),
                (210 * MS, token(1, false)),
                (220 * MS, token(2, true)),
                (220 * MS, Tick::Done),
            ]
        );
        assert_eq!(e.metrics().running.get(), 0);
        assert_eq!(e.metrics().kv_usage(), 0.0);
        drop(run);
        let text = e.metrics().render();
        assert!(text.contains("vllm:generation_tokens_total{engine=\"0\",model_name=\"m\"} 3"));
        assert!(text.contains("vllm:prompt_tokens_total{engine=\"0\",model_name=\"m\"} 2000"));
        assert!(text.contains("finished_reason=\"abort\",model_name=\"m\"} 0"));
        assert!(text.contains("finished_reason=\"length\",model_name=\"m\"} 1"));
    }

    #[tokio::test(start_paused = true)]
    async fn queued_runs_start_when_a_slot_frees_and_overflow_is_refused() {
        let e = engine(Some(1), 1);
        let start = Instant::now();
        let mut first = e.submit(job(1, 0, None)).unwrap();
        let mut second = e.submit(job(1, 0, None)).unwrap();
        assert_eq!(e.metrics().waiting.get(), 1);
        let third = e.submit(job(1, 0, None));
        assert!(third.is_err());
        assert_eq!(e.metrics().waiting.get(), 1);

        let t1 = ticks(&mut first, start).await;
        assert_eq!(t1[0].0, 100 * MS);
        let t2 = ticks(&mut second, start).await;
        assert_eq!(t2[0].0, 200 * MS, "the second starts when the first ends");
        assert_eq!(e.metrics().waiting.get(), 0);
        assert_eq!(e.metrics().running.get(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_a_queued_run_leaves_the_queue_and_counts_an_abort() {
        let e = engine(Some(1), 10);
        let start = Instant::now();
        let mut first = e.submit(job(1, 0, None)).unwrap();
        let gone = e.submit(job(1, 0, None)).unwrap();
        let mut third = e.submit(job(1, 0, None)).unwrap();
        assert_eq!(e.metrics().waiting.get(), 2);
        drop(gone);
        assert_eq!(e.metrics().waiting.get(), 1);
        ticks(&mut first, start).await;
        let t = ticks(&mut third, start).await;
        assert_eq!(t[0].0, 200 * MS);
        assert!(e
            .metrics()
            .render()
            .contains("finished_reason=\"abort\",model_name=\"m\"} 1"));
    }

    #[tokio::test(start_paused = true)]
    async fn cuts_stall_or_drop_after_n_tokens() {
        let e = engine(None, 0);
        let start = Instant::now();
        let drop_cut = Cut {
            after: 2,
            drop: true,
        };
        let mut run = e.submit(job(5, 0, Some(drop_cut))).unwrap();
        let t = ticks(&mut run, start).await;
        assert_eq!(t.len(), 3);
        assert_eq!(t[2], (120 * MS, Tick::Aborted));

        let stall = Cut {
            after: 1,
            drop: false,
        };
        let mut run = e.submit(job(5, 0, Some(stall))).unwrap();
        let first = std::future::poll_fn(|cx| run.poll_tick(cx)).await;
        assert_eq!(
            first,
            Tick::Token {
                index: 0,
                last: false
            }
        );
        let more = tokio::time::timeout(Duration::from_secs(60), run.complete()).await;
        assert!(more.is_err(), "a stalled run never completes");
        assert_eq!(e.metrics().running.get(), 1, "a stalled run keeps its slot");
        drop(run);
        assert_eq!(e.metrics().running.get(), 0);

        // A cut beyond the output length applies after the last token.
        let late = Cut {
            after: 9,
            drop: true,
        };
        let mut run = e.submit(job(2, 0, Some(late))).unwrap();
        let t = ticks(&mut run, Instant::now()).await;
        assert_eq!(t.len(), 3);
        assert_eq!(t[2].1, Tick::Aborted);
    }
}
