//! Tests of the KV-cache model through the engine: admission, waiting, preemption and the
//! prefix cache, in paused time.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::time::Instant;

use crate::sim::engine::{Engine, EngineConfig, Job, KvConfig, Run, Tick};
use crate::sim::metrics::Metrics;
use crate::sim::timing::Latency;

const MS: Duration = Duration::from_millis(1);

fn kv_engine(capacity_tokens: u64, max_running: Option<usize>) -> Arc<Engine> {
    let cfg = EngineConfig {
        max_running,
        max_waiting: 100,
        ttft: Latency::new(100 * MS, Duration::ZERO),
        itl: Latency::new(10 * MS, Duration::ZERO),
        prefill_per_1k_tokens: Duration::from_secs(1),
        kv: Some(KvConfig {
            capacity_tokens,
            block_size: 16,
            prefix_caching: true,
        }),
    };
    let metrics = Arc::new(Metrics::new("m", capacity_tokens).unwrap());
    Arc::new(Engine::new(cfg, metrics).unwrap())
}

fn job(prompt_tokens: u64, tokens: u32, prefix_hashes: Vec<u64>) -> Job {
    Job {
        arrival: Instant::now(),
        prompt_tokens,
        tokens,
        cut: None,
        prefix_hashes,
        rng: SmallRng::seed_from_u64(1),
    }
}

/// Drives `run` to its end; returns the time of its first token and of its end.
async fn finish(run: &mut Run, start: Instant) -> (Duration, Duration, u32) {
    let mut first = None;
    let mut count = 0;
    loop {
        match std::future::poll_fn(|cx| run.poll_tick(cx)).await {
            Tick::Token { .. } => {
                count += 1;
                first.get_or_insert(start.elapsed());
            }
            Tick::Done => return (first.unwrap_or_default(), start.elapsed(), count),
            Tick::Aborted => panic!("aborted"),
        }
    }
}

fn metric(e: &Engine, name: &str) -> f64 {
    let text = e.metrics().render();
    let prefix = format!("{name}{{engine=\"0\",model_name=\"m\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_full_cache_queues_then_preempts_the_newest_and_everyone_finishes() {
    // 4 blocks of 16 tokens; each request ends at 16 + 40 = 56 tokens, 4 blocks.
    let e = kv_engine(64, None);
    let start = Instant::now();
    let mut a = e.submit(job(16, 40, Vec::new())).unwrap();
    let mut b = e.submit(job(16, 40, Vec::new())).unwrap();
    let mut c = e.submit(job(40, 4, Vec::new())).unwrap();
    assert_eq!(e.metrics().running.get(), 2);
    assert_eq!(
        e.metrics().waiting.get(),
        1,
        "a and b reserve 2 blocks each (prompt and next token); c needs 3"
    );
    assert_eq!(metric(&e, "vllm:kv_cache_usage_perc"), 1.0);

    let (ra, rb, rc) = tokio::join!(
        finish(&mut a, start),
        finish(&mut b, start),
        finish(&mut c, start)
    );
    assert_eq!(
        (ra.2, rb.2, rc.2),
        (40, 40, 4),
        "every token is produced once"
    );
    // b is preempted once, and not readmitted before a finishes (its next token's slot
    // is reserved on readmission), so it does not thrash.
    assert_eq!(metric(&e, "vllm:num_preemptions_total"), 1.0);
    assert!(
        rb.1 > ra.1,
        "b, the newest, was preempted and finishes later: {ra:?} {rb:?}"
    );
    assert_eq!(metric(&e, "vllm:kv_cache_usage_perc"), 0.0);
    assert_eq!(metric(&e, "vllm:num_requests_running"), 0.0);
    assert_eq!(metric(&e, "vllm:num_requests_waiting"), 0.0);
    assert_eq!(metric(&e, "vllm:generation_tokens_total"), 84.0);
}

#[tokio::test(start_paused = true)]
async fn a_request_larger_than_the_cache_is_refused() {
    let e = kv_engine(64, None);
    let err = e.submit(job(60, 10, Vec::new())).err().unwrap();
    assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
    assert_eq!(metric(&e, "vllm:num_requests_waiting"), 0.0);
}

#[tokio::test(start_paused = true)]
async fn max_running_bounds_the_batch() {
    let e = kv_engine(1024, Some(1));
    let start = Instant::now();
    let mut a = e.submit(job(1, 2, Vec::new())).unwrap();
    let mut b = e.submit(job(1, 2, Vec::new())).unwrap();
    assert_eq!(e.metrics().waiting.get(), 1);
    let ra = finish(&mut a, start).await;
    let rb = finish(&mut b, start).await;
    assert!(rb.0 >= ra.1, "b starts when a ends: {ra:?} {rb:?}");
}

#[tokio::test(start_paused = true)]
async fn a_cached_prefix_is_not_prefilled_again() {
    let e = kv_engine(4096, None);
    let hashes: Vec<u64> = (1..=10).collect();
    // 160 prompt tokens: 100 ms + 160 ms of prefill.
    let start = Instant::now();
    let mut first = e.submit(job(160, 1, hashes.clone())).unwrap();
    let (ttft, _, _) = finish(&mut first, start).await;
    assert_eq!(ttft, 260 * MS);
    drop(first);
    // All 10 blocks hit; only the last token is computed again.
    let start = Instant::now();
    let mut second = e.submit(job(160, 1, hashes)).unwrap();
    let (ttft, _, _) = finish(&mut second, start).await;
    assert_eq!(ttft, 101 * MS);
    assert_eq!(metric(&e, "vllm:prefix_cache_queries_total"), 320.0);
    assert_eq!(metric(&e, "vllm:prefix_cache_hits_total"), 159.0);
    assert_eq!(e.scheduler().unwrap().cached_blocks(), 10);
}

#[tokio::test(start_paused = true)]
async fn the_least_recently_used_prefix_is_evicted_first() {
    // 10 blocks; each run holds its 4 prompt blocks and 1 for its output token. Two
    // prompts stay cached; the third evicts 3 blocks of the least recently used one, tail
    // first.
    let e = kv_engine(160, None);
    let prompt = |base: u64| -> Vec<u64> { (base..base + 4).collect() };
    for base in [100, 200, 300] {
        let mut run = e.submit(job(64, 1, prompt(base))).unwrap();
        finish(&mut run, Instant::now()).await;
    }
    // 300 evicted the last 3 blocks of 100 (freed first); 200's survive.
    let ttft_of = |base| {
        let e = Arc::clone(&e);
        async move {
            let mut run = e.submit(job(64, 1, prompt(base))).unwrap();
            finish(&mut run, Instant::now()).await.0
        }
    };
    let hit = ttft_of(200).await;
    let miss = ttft_of(100).await;
    assert_eq!(hit, 101 * MS, "200 is cached");
    assert_eq!(miss, 148 * MS, "only the first block of 100 is left");
}
