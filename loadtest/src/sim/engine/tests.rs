//! Tests of the engine: token schedule, queueing, cuts.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use tokio::time::Instant;

use super::{Cut, Engine, EngineConfig, Job, Run, Tick};
use crate::sim::metrics::Metrics;
use crate::sim::timing::Latency;
use rand::SeedableRng;

const MS: Duration = Duration::from_millis(1);

fn engine(max_running: Option<usize>, max_waiting: usize) -> Arc<Engine> {
    let cfg = EngineConfig {
        max_running,
        max_waiting,
        ttft: Latency::new(100 * MS, Duration::ZERO),
        itl: Latency::new(10 * MS, Duration::ZERO),
        prefill_per_1k_tokens: 50 * MS,
        kv: None,
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
        prefix_hashes: Vec::new(),
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
