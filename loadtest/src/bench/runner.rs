//! The load generators.
//!
//! **Open loop** (`--rate`): the arrival times follow from the seed, and each request is
//! sent at `start + arrival` (an absolute deadline, so a late wake-up never shifts later
//! arrivals), each as its own task; the record keeps the scheduled and the actual send time,
//! so a generator that falls behind shows it as send lag instead of silently sending less.
//! Arrivals already due are sent at once. The schedule runs on a dedicated thread that sleeps
//! with the OS timer (tens of microseconds of slack, where tokio's timer rounds up to the next
//! millisecond) and spawns each request onto the runtime; it wakes on a 0.2 ms grid
//! ([`GRID`]), sending together the arrivals due within one slot, so that a high rate does
//! not cost one thread wake-up per request.
//!
//! **Closed loop** (`--concurrency C`): C workers, each sending its next request as soon as
//! its previous one ended; a request's scheduled time is when its worker became free.
//!
//! A step stops starting requests after `--requests N` or `--duration`; requests in flight
//! then finish (each bounded by `--timeout`). Warm-up requests (`--warmup N`) run before each
//! step at the same load, are waited for, and are not recorded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::client::{execute, micros, Ctx};
use super::progress::Progress;
use super::record::Record;
use super::spec::{fmt_num, Slo};
use super::stats::{summarize, Summary};
use super::workload::{Arrival, Arrivals, Stream, Workload};

/// The load of a run or sweep step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Load {
    /// Open loop: `rate` requests per second on average.
    Rate { rate: f64, arrival: Arrival },
    /// Closed loop: `concurrency` requests in flight.
    Concurrency { concurrency: u32 },
}

impl Load {
    /// `rate 4/s` or `concurrency 16`.
    pub fn describe(&self) -> String {
        match self {
            Load::Rate { rate, arrival } => {
                let a = match arrival {
                    Arrival::Poisson => "poisson",
                    Arrival::Constant => "constant",
                };
                format!("rate {}/s ({a})", fmt_num(*rate))
            }
            Load::Concurrency { concurrency } => format!("concurrency {concurrency}"),
        }
    }

    /// The swept value: the rate or the concurrency.
    pub fn value(&self) -> f64 {
        match self {
            Load::Rate { rate, .. } => *rate,
            Load::Concurrency { concurrency } => f64::from(*concurrency),
        }
    }
}

/// When a step stops starting requests (whichever comes first).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stop {
    pub requests: Option<u64>,
    pub duration: Option<Duration>,
}

/// What every step shares.
pub struct Plan {
    pub workload: Arc<Workload>,
    pub stop: Stop,
    pub warmup: u64,
    /// Keep-alive connections to open before each step (`--connections`).
    pub connections: u32,
    /// Open loop: most requests in flight; later arrivals wait for a slot, and the wait
    /// counts as send lag (`--max-concurrency`).
    pub max_concurrency: Option<u32>,
    pub slo: Option<Slo>,
    /// Show the progress display.
    pub progress: bool,
    /// stderr is a terminal (redraw in place).
    pub tty: bool,
}

/// The result of one step.
pub struct StepResult {
    pub load: Load,
    pub records: Vec<Record>,
    pub summary: Summary,
}

/// Runs every load of `loads` in turn (one step each), calling `on_step` after each. Stops
/// early, after the step in progress, when `cancel` turns true.
pub async fn run_steps(
    ctx: Arc<Ctx>,
    plan: &Plan,
    loads: &[Load],
    cancel: watch::Receiver<bool>,
    mut on_step: impl FnMut(usize, &StepResult),
) -> Vec<StepResult> {
    let mut out = Vec::with_capacity(loads.len());
    for (i, load) in loads.iter().enumerate() {
        if *cancel.borrow() {
            break;
        }
        let label = if loads.len() > 1 {
            format!("[{}/{} {}]", i + 1, loads.len(), load.describe())
        } else {
            format!("[{}]", load.describe())
        };
        if plan.connections > 0 {
            prewarm(&ctx, plan.connections).await;
        }
        if plan.warmup > 0 {
            let stop = Stop {
                requests: Some(plan.warmup),
                duration: None,
            };
            run_load(
                &ctx,
                plan,
                *load,
                Stream::Warmup,
                stop,
                format!("{label} warm-up"),
                cancel.clone(),
            )
            .await;
            if *cancel.borrow() {
                break;
            }
        }
        let (records, duration_s) = run_load(
            &ctx,
            plan,
            *load,
            Stream::Measured,
            plan.stop,
            label,
            cancel.clone(),
        )
        .await;
        let summary = summarize(&records, duration_s, plan.slo.as_ref());
        let step = StepResult {
            load: *load,
            records,
            summary,
        };
        on_step(i, &step);
        out.push(step);
    }
    out
}

/// Opens up to `n` keep-alive connections before the clock starts: `n` concurrent
/// `GET .../v1/models` (a standard OpenAI route; any answer leaves the connection in the pool).
/// At a high rate, a cold start would otherwise open one connection per early arrival, a
/// burst that can overflow the server's accept queue.
async fn prewarm(ctx: &Arc<Ctx>, n: u32) {
    let uri = models_uri(&ctx.target.uri);
    let mut set = JoinSet::new();
    for _ in 0..n {
        let (ctx, uri) = (ctx.clone(), uri.clone());
        set.spawn(async move {
            let mut req = http::Request::new(http_body_util::Full::new(bytes::Bytes::new()));
            *req.uri_mut() = uri;
            for (k, v) in &ctx.target.headers {
                if k != http::header::CONTENT_TYPE {
                    req.headers_mut().append(k, v.clone());
                }
            }
            let fut = async {
                if let Ok(resp) = ctx.client.request(req).await {
                    use http_body_util::BodyExt;
                    let _ = resp.into_body().collect().await;
                }
            };
            let _ = tokio::time::timeout(ctx.timeout, fut).await;
        });
    }
    while set.join_next().await.is_some() {}
}

/// `.../v1/models` next to the endpoint (`/v1/models` when its path has no `/v1/`).
pub fn models_uri(endpoint: &http::Uri) -> http::Uri {
    let path = endpoint.path();
    let models = match path.find("/v1/") {
        Some(i) => format!("{}/v1/models", &path[..i]),
        None => "/v1/models".to_owned(),
    };
    let mut parts = endpoint.clone().into_parts();
    parts.path_and_query = models.parse().ok();
    http::Uri::from_parts(parts).unwrap_or_else(|_| endpoint.clone())
}

/// Runs one load until `stop`; returns the records (by id) and the duration in seconds.
async fn run_load(
    ctx: &Arc<Ctx>,
    plan: &Plan,
    load: Load,
    stream: Stream,
    stop: Stop,
    label: String,
    cancel: watch::Receiver<bool>,
) -> (Vec<Record>, f64) {
    ctx.live.reset();
    let t0 = Instant::now();
    let progress = Progress::start(
        Arc::clone(&ctx.live),
        label,
        stop.requests,
        t0,
        plan.tty,
        plan.progress,
    );
    let mut records = match load {
        Load::Rate { rate, arrival } => {
            let limit = plan
                .max_concurrency
                .map(|c| Arc::new(tokio::sync::Semaphore::new(c as usize)));
            let shape = Shape {
                rate,
                arrival,
                limit,
            };
            open_loop(ctx, &plan.workload, stream, shape, stop, t0, cancel).await
        }
        Load::Concurrency { concurrency } => {
            closed_loop(ctx, &plan.workload, stream, concurrency, stop, t0, cancel).await
        }
    };
    let elapsed = micros(t0.elapsed());
    progress.finish().await;
    records.sort_unstable_by_key(|r| r.id);
    let end = records.iter().map(Record::end_us).max().unwrap_or(elapsed);
    (records, end as f64 / 1e6)
}

/// The wake-up grid of the open-loop scheduler: the send lag it adds is below this.
pub const GRID: Duration = Duration::from_micros(200);

/// The first point of the grid (from `t0`, every [`GRID`]) at or after `due`.
fn grid_after(t0: Instant, due: Instant) -> Instant {
    let grid = GRID.as_nanos();
    let off = due.saturating_duration_since(t0).as_nanos();
    let slots = off.div_ceil(grid);
    let at = u64::try_from(slots * grid).unwrap_or(u64::MAX);
    t0.checked_add(Duration::from_nanos(at)).unwrap_or(due)
}

/// An open-loop load.
struct Shape {
    rate: f64,
    arrival: Arrival,
    /// `--max-concurrency`.
    limit: Option<Arc<tokio::sync::Semaphore>>,
}

async fn open_loop(
    ctx: &Arc<Ctx>,
    workload: &Arc<Workload>,
    stream: Stream,
    shape: Shape,
    stop: Stop,
    t0: Instant,
    cancel: watch::Receiver<bool>,
) -> Vec<Record> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Record>();
    let handle = tokio::runtime::Handle::current();
    let (ctx, workload) = (ctx.clone(), workload.clone());
    // The schedule runs on its own thread: `std::thread::sleep` wakes within tens of
    // microseconds, where the runtime's timer has a 1 ms granularity. Each request is spawned
    // onto the runtime as its own task, at its due time.
    let scheduler = tokio::task::spawn_blocking(move || {
        let Shape {
            rate,
            arrival,
            limit,
        } = shape;
        let end = stop.duration.map(|d| d.as_secs_f64());
        for (i, at) in Arrivals::new(arrival, rate, workload.seed, stream).enumerate() {
            let i = i as u64;
            if stop.requests.is_some_and(|n| i >= n) || end.is_some_and(|d| at >= d) {
                break;
            }
            let Some(due) = Duration::try_from_secs_f64(at)
                .ok()
                .and_then(|d| t0.checked_add(d))
            else {
                break;
            };
            // The body is built before the wait, off the send path.
            let prepared = workload.request(stream, i);
            // Wake on a grid of GRID from the start: the arrivals due within one slot go out
            // together at its end, so a high rate costs at most 1/GRID wake-ups a second.
            // Sleep in slices so that an interrupt is seen within 50 ms.
            let wake = grid_after(t0, due);
            loop {
                if *cancel.borrow() {
                    return;
                }
                let now = Instant::now();
                if now >= due {
                    break;
                }
                std::thread::sleep((wake - now).min(Duration::from_millis(50)));
            }
            let scheduled_us = micros(due.saturating_duration_since(t0));
            let (ctx, tx, limit) = (ctx.clone(), tx.clone(), limit.clone());
            handle.spawn(async move {
                // With --max-concurrency, wait for a slot: the wait is part of the send lag.
                let _permit = match limit {
                    Some(sem) => sem.acquire_owned().await.ok(),
                    None => None,
                };
                let _ = tx.send(execute(&ctx, prepared, i, t0, scheduled_us).await);
            });
        }
    });
    let mut records = Vec::with_capacity(stop.requests.unwrap_or(1024).min(1 << 20) as usize);
    // The channel closes when the scheduler and every request task have dropped their sender.
    while let Some(r) = rx.recv().await {
        records.push(r);
    }
    let _ = scheduler.await;
    records
}

async fn closed_loop(
    ctx: &Arc<Ctx>,
    workload: &Arc<Workload>,
    stream: Stream,
    concurrency: u32,
    stop: Stop,
    t0: Instant,
    cancel: watch::Receiver<bool>,
) -> Vec<Record> {
    let next = Arc::new(AtomicU64::new(0));
    let deadline = stop.duration.and_then(|d| t0.checked_add(d));
    let mut set = JoinSet::new();
    for _ in 0..concurrency {
        let (ctx, workload, next, cancel) =
            (ctx.clone(), workload.clone(), next.clone(), cancel.clone());
        set.spawn(async move {
            let mut out = Vec::new();
            let mut ready = t0;
            loop {
                if *cancel.borrow() || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if stop.requests.is_some_and(|n| i >= n) {
                    break;
                }
                let scheduled_us = micros(ready.saturating_duration_since(t0));
                let prepared = workload.request(stream, i);
                out.push(execute(&ctx, prepared, i, t0, scheduled_us).await);
                ready = Instant::now();
            }
            out
        });
    }
    let mut records = Vec::new();
    while let Some(done) = set.join_next().await {
        if let Ok(mut r) = done {
            records.append(&mut r);
        }
    }
    records
}
