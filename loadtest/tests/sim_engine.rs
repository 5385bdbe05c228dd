//! The simulator's KV-cache model over real HTTP: blocks, waiting, preemption, the prefix
//! cache (TTFT, LRU eviction) and the metric names it exports.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use infergate_loadtest::sim::{KvModel, MetricSets, SimConfig};
use serde_json::{json, Value};

const LABELS: &str = "{engine=\"0\",model_name=\"demo\"}";

fn kv(capacity: u64) -> SimConfig {
    SimConfig {
        kv_model: Some(KvModel::default()),
        kv_cache_tokens: capacity,
        ttft: 10 * MS,
        itl: 5 * MS,
        ..SimConfig::default()
    }
}

/// A chat body whose prompt is `words` words starting with `tag` (distinct tags, distinct
/// prefixes), then `question`.
fn prompt(tag: &str, words: usize, question: &str, max_tokens: u32, stream: bool) -> Value {
    let system: Vec<String> = (0..words).map(|i| format!("{tag}{i}")).collect();
    json!({
        "model": "demo",
        "messages": [
            {"role": "system", "content": system.join(" ")},
            {"role": "user", "content": question},
        ],
        "max_tokens": max_tokens,
        "stream": stream,
    })
}

/// Time of a non-streamed request, which must succeed with `tokens` completion tokens.
async fn timed(
    client: &HttpClient,
    addr: std::net::SocketAddr,
    body: &Value,
    tokens: u64,
) -> Duration {
    let sent = Instant::now();
    let (status, v) = json_of(post_chat(client, addr, body, &[]).await).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["usage"]["completion_tokens"], tokens, "{v}");
    sent.elapsed()
}

#[tokio::test]
async fn a_full_kv_cache_makes_requests_wait_and_preempts_the_newest() {
    // 8 blocks of 16 tokens. Four requests of 17 prompt tokens (2 blocks each) fit at
    // first, but each grows to 17 + 40 = 57 tokens (4 blocks): they cannot all finish
    // together, so some are preempted. A fifth (7 blocks) waits from the start.
    let sim = start(SimConfig {
        itl: 20 * MS,
        ..kv(128)
    })
    .await;
    let addr = sim.addr();
    let mut tasks = Vec::new();
    for i in 0..4 {
        let body = prompt(&format!("r{i}x"), 16, "q", 40, false);
        tasks.push(tokio::spawn(async move {
            timed(&client(), addr, &body, 40).await
        }));
        wait_until("the request is in", || {
            sim.running() + sim.waiting() == i + 1
        })
        .await;
    }
    let big = prompt("big", 100, "q", 2, false);
    tasks.push(tokio::spawn(async move {
        timed(&client(), addr, &big, 2).await
    }));
    let text = wait_for_metrics(addr, "a waiting request", |t| {
        sample(t, "vllm:num_requests_waiting", &[]) >= 1.0
    })
    .await;
    assert!(
        sample(&text, "vllm:kv_cache_usage_perc", &[]) > 0.0,
        "{text}"
    );
    for task in tasks {
        task.await.unwrap();
    }
    let text = scrape(addr).await;
    assert!(
        sample(&text, "vllm:num_preemptions_total", &[]) >= 1.0,
        "{text}"
    );
    assert_eq!(sample(&text, "vllm:num_requests_running", &[]), 0.0);
    assert_eq!(sample(&text, "vllm:num_requests_waiting", &[]), 0.0);
    assert_eq!(sample(&text, "vllm:kv_cache_usage_perc", &[]), 0.0);
    assert_eq!(sample(&text, "vllm:generation_tokens_total", &[]), 162.0);
    // A request that cannot fit in the whole cache is refused.
    let huge = prompt("huge", 200, "q", 2, false);
    let resp = post_chat(&client(), addr, &huge, &[]).await;
    assert_eq!(error_of(resp, 400).await, "BadRequestError");
}

#[tokio::test]
async fn a_cached_system_prompt_gives_a_much_shorter_ttft() {
    // 1 ms of prefill per prompt token: a 400-word system prompt costs 400 ms uncached.
    let sim = start(SimConfig {
        prefill_per_1k_tokens: Duration::from_secs(1),
        ..kv(65536)
    })
    .await;
    let client = client();
    let first = prompt("sys", 400, "what is the weather", 2, true);
    let sent = Instant::now();
    let cold = first_frame_after(post_chat(&client, sim.addr(), &first, &[]).await, sent).await;
    let second = prompt("sys", 400, "and for tomorrow then", 2, true);
    let sent = Instant::now();
    let warm = first_frame_after(post_chat(&client, sim.addr(), &second, &[]).await, sent).await;
    assert!(cold >= 400 * MS, "{cold:?}");
    assert!(warm * 3 < cold, "cached {warm:?} vs cold {cold:?}");
    let text = scrape(sim.addr()).await;
    assert_eq!(sample(&text, "vllm:prefix_cache_queries_total", &[]), 808.0);
    // The 25 full blocks of the system prompt hit.
    assert_eq!(sample(&text, "vllm:prefix_cache_hits_total", &[]), 400.0);
    assert_eq!(sample(&text, "vllm:prompt_tokens_total", &[]), 808.0);
}

#[tokio::test]
async fn the_least_recently_used_prefix_is_evicted() {
    // 64 blocks; each request holds 20 prompt blocks and 1 for its token. A, B and C stay
    // cached (4 blocks stay empty); D evicts 17 blocks of A (the least recently used, tail
    // first), whose next request prefills 272 tokens again.
    let sim = start(SimConfig {
        prefill_per_1k_tokens: Duration::from_secs(1),
        ..kv(1024)
    })
    .await;
    let client = client();
    let body = |tag: &str| prompt(tag, 320, "", 1, false);
    for tag in ["a", "b", "c", "d"] {
        timed(&client, sim.addr(), &body(tag), 1).await;
    }
    let hits = || async {
        sample(
            &scrape(sim.addr()).await,
            "vllm:prefix_cache_hits_total",
            &[],
        )
    };
    assert_eq!(hits().await, 0.0);
    let b = timed(&client, sim.addr(), &body("b"), 1).await;
    assert_eq!(hits().await, 319.0, "all of b's blocks were cached");
    let a = timed(&client, sim.addr(), &body("a"), 1).await;
    assert_eq!(hits().await, 319.0 + 48.0, "3 of a's 20 blocks were left");
    assert!(
        a >= 270 * MS,
        "a's 272 evicted tokens are prefilled again: {a:?}"
    );
    assert!(
        a > b + 150 * MS,
        "b is cached, a was evicted: a {a:?}, b {b:?}"
    );
}

#[tokio::test]
async fn metric_names_and_labels_match_vllm() {
    let sim = start(kv(65536)).await;
    let client = client();
    timed(&client, sim.addr(), &prompt("m", 20, "", 3, false), 3).await;
    let text = scrape(sim.addr()).await;
    for (name, value) in [
        ("vllm:num_requests_running", Some(0.0)),
        ("vllm:num_requests_waiting", Some(0.0)),
        ("vllm:kv_cache_usage_perc", Some(0.0)),
        ("vllm:prefix_cache_queries_total", Some(20.0)),
        ("vllm:prefix_cache_hits_total", Some(0.0)),
        ("vllm:num_preemptions_total", Some(0.0)),
        ("vllm:prompt_tokens_total", Some(20.0)),
        ("vllm:generation_tokens_total", Some(3.0)),
    ] {
        let line = format!("{name}{LABELS} ");
        assert!(text.contains(&line), "missing {line} in\n{text}");
        if let Some(value) = value {
            assert_eq!(sample(&text, name, &[]), value, "{name}");
        }
    }
    assert!(text.contains("# TYPE vllm:prefix_cache_hits_total counter"));
    assert!(text.contains("# TYPE vllm:kv_cache_usage_perc gauge"));
    assert!(!text.contains("gpu_cache_usage_perc"));
    assert!(!text.contains("sglang:"));
}

#[tokio::test]
async fn legacy_and_sglang_names_can_replace_the_current_ones() {
    let sim = start(SimConfig {
        metric_sets: "vllm-legacy,sglang".parse::<MetricSets>().unwrap(),
        itl: 50 * MS,
        ..kv(160)
    })
    .await;
    let addr = sim.addr();
    // One long stream holds blocks while we scrape.
    let body = prompt("s", 32, "", 40, true);
    let resp = post_chat(&client(), addr, &body, &[]).await;
    let text = wait_for_metrics(addr, "a running request", |t| {
        t.contains("sglang:num_running_reqs{model_name=\"demo\"} 1")
    })
    .await;
    let usage = sample(&text, "vllm:gpu_cache_usage_perc", &[]);
    assert!((0.2..=1.0).contains(&usage), "{text}");
    assert_eq!(sample(&text, "sglang:token_usage", &[]), usage);
    assert_eq!(sample(&text, "sglang:num_queue_reqs", &[]), 0.0);
    assert_eq!(sample(&text, "vllm:num_requests_running", &[]), 1.0);
    assert!(!text.contains("vllm:kv_cache_usage_perc"), "{text}");
    drop(resp);
    // The same prompt again: 2 of its 32 tokens' blocks hit.
    wait_until("the stream ends", || sim.running() == 0).await;
    timed(&client(), addr, &prompt("s", 32, "", 1, false), 1).await;
    let text = scrape(addr).await;
    let rate = sample(&text, "sglang:cache_hit_rate", &[]);
    assert!((rate - 31.0 / 64.0).abs() < 1e-9, "{text}");
}
