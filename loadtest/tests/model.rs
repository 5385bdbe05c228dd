//! The simulator as a stand-in for vLLM: random timing, prefill cost, the capacity model
//! (running slots, FIFO queue, 429) and vLLM's Prometheus metrics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use http::StatusCode;
use infergate_loadtest::sim::{SimConfig, Simulator};
use tokio::task::JoinSet;

#[tokio::test]
async fn ttft_draws_have_the_configured_mean_and_spread() {
    let sim = start(SimConfig {
        ttft: 200 * MS,
        ttft_stddev: 40 * MS,
        itl: MS,
        seed: Some(7),
        ..SimConfig::default()
    })
    .await;
    let addr = sim.addr();
    let mut tasks = JoinSet::new();
    for _ in 0..200 {
        tasks.spawn(async move {
            let resp = post_chat(&client(), addr, &chat(1, true), &[]).await;
            // The head comes on arrival; the first event after the TTFT draw. Timing from
            // the head leaves out the cost of opening 200 connections at once.
            first_frame_after(resp, Instant::now()).await
        });
    }
    let ttfts: Vec<Duration> = tasks.join_all().await;
    let (mean, sd) = mean_sd_ms(&ttfts);
    // Client-side: the draws plus scheduling noise (heads of later connections can lag
    // their arrival on a busy machine, which shortens what the client sees).
    assert!((150.0..=250.0).contains(&mean), "mean {mean:.1} ms");
    assert!((25.0..=60.0).contains(&sd), "sd {sd:.1} ms");
    let min = ttfts.iter().min().unwrap();
    let max = ttfts.iter().max().unwrap();
    assert!(*min >= 55 * MS, "draws are clamped at 0.3 x mean: {min:?}");
    assert!(*max <= 400 * MS, "draws are clamped at 1.7 x mean: {max:?}");

    // Server-side: the histogram holds the exact draws.
    let text = scrape(addr).await;
    let name = "vllm:time_to_first_token_seconds";
    assert_eq!(sample(&text, &format!("{name}_count"), &[]), 200.0);
    let server_mean = sample(&text, &format!("{name}_sum"), &[]) / 200.0;
    assert!(
        (0.190..=0.210).contains(&server_mean),
        "server mean {server_mean}"
    );
    // With a 40 ms spread about 89% fall at or below 250 ms; with none, all 200 would.
    let below = sample(&text, &format!("{name}_bucket"), &["le=\"0.25\""]);
    assert!((160.0..=196.0).contains(&below), "{below} of 200 <= 250 ms");
    assert!(sample(&text, &format!("{name}_bucket"), &["le=\"0.1\""]) <= 5.0);
}

/// TTFT and ITL sums over `n` sequential streamed requests.
async fn timing_sums(seed: u64, n: usize) -> (f64, f64) {
    let sim = start(SimConfig {
        ttft: 20 * MS,
        ttft_stddev: 10 * MS,
        itl: 2 * MS,
        itl_stddev: MS,
        seed: Some(seed),
        ..SimConfig::default()
    })
    .await;
    let client = client();
    for _ in 0..n {
        let resp = post_chat(&client, sim.addr(), &chat(5, true), &[]).await;
        text_of(resp).await;
    }
    let text = sim.metrics_text();
    assert_eq!(
        sample(&text, "vllm:inter_token_latency_seconds_count", &[]),
        (4 * n) as f64
    );
    (
        sample(&text, "vllm:time_to_first_token_seconds_sum", &[]),
        sample(&text, "vllm:inter_token_latency_seconds_sum", &[]),
    )
}

#[tokio::test]
async fn a_seed_makes_the_draws_repeatable() {
    let a = timing_sums(11, 8).await;
    let b = timing_sums(11, 8).await;
    let c = timing_sums(12, 8).await;
    assert_eq!(a, b, "same seed, same draws");
    assert_ne!(a.0, c.0, "another seed, other draws");
    assert_ne!(a.1, c.1, "another seed, other draws");
}

#[tokio::test]
async fn prefill_adds_time_per_prompt_token() {
    let sim = start(SimConfig {
        ttft: 50 * MS,
        prefill_per_1k_tokens: 100 * MS,
        ..SimConfig::default()
    })
    .await;
    let client = client();
    // 2000 prompt tokens: 50 + 200 ms.
    let sent = Instant::now();
    let resp = post_chat(&client, sim.addr(), &chat_with_prompt(2000, 1, false), &[]).await;
    let long = sent.elapsed();
    assert_eq!(resp.status(), StatusCode::OK);
    text_of(resp).await;
    // 2 prompt tokens: 50.2 ms.
    let sent = Instant::now();
    let resp = post_chat(&client, sim.addr(), &chat(1, false), &[]).await;
    let short = sent.elapsed();
    text_of(resp).await;
    assert!(
        (245 * MS..450 * MS).contains(&long),
        "long prompt took {long:?}"
    );
    assert!(
        (45 * MS..200 * MS).contains(&short),
        "short prompt took {short:?}"
    );
    let text = sim.metrics_text();
    let sum = sample(&text, "vllm:time_to_first_token_seconds_sum", &[]);
    assert!((sum - 0.3002).abs() < 0.001, "ttft sum {sum}");
    assert_eq!(sample(&text, "vllm:prompt_tokens_total", &[]), 2002.0);
}

#[tokio::test]
async fn with_max_running_later_requests_queue_and_their_ttft_rises() {
    let sim = start(SimConfig {
        ttft: 100 * MS,
        itl: 10 * MS,
        max_running: Some(2),
        ..SimConfig::default()
    })
    .await;
    let addr = sim.addr();
    let mut tasks = JoinSet::new();
    for _ in 0..6 {
        tasks.spawn(async move {
            let sent = Instant::now();
            // One token: a request holds its slot for its TTFT only.
            let resp = post_chat(&client(), addr, &chat(1, true), &[]).await;
            first_frame_after(resp, sent).await
        });
    }
    // All six are in: two running, four waiting.
    wait_until("2 running and 4 waiting", || {
        sim.requests_received() == 6 && (sim.running(), sim.waiting()) == (2, 4)
    })
    .await;
    let text = scrape(addr).await;
    assert_eq!(sample(&text, "vllm:num_requests_running", &[]), 2.0);
    assert_eq!(sample(&text, "vllm:num_requests_waiting", &[]), 4.0);
    assert_eq!((sim.running(), sim.waiting()), (2, 4));

    let mut ttfts: Vec<Duration> = tasks.join_all().await;
    ttfts.sort();
    let first = (ttfts[0] + ttfts[1]) / 2;
    let middle = (ttfts[2] + ttfts[3]) / 2;
    let last = (ttfts[4] + ttfts[5]) / 2;
    assert!((90 * MS..180 * MS).contains(&first), "{ttfts:?}");
    let ratio = |d: Duration| d.as_secs_f64() / first.as_secs_f64();
    assert!((1.6..=2.6).contains(&ratio(middle)), "{ttfts:?}");
    assert!((2.4..=3.6).contains(&ratio(last)), "{ttfts:?}");

    let text = scrape(addr).await;
    assert_eq!(sample(&text, "vllm:num_requests_running", &[]), 0.0);
    assert_eq!(sample(&text, "vllm:num_requests_waiting", &[]), 0.0);
    // The server-side TTFT includes the wait: 0.1 + 0.1 + 0.2 + 0.2 + 0.3 + 0.3 s.
    let sum = sample(&text, "vllm:time_to_first_token_seconds_sum", &[]);
    assert!((1.15..1.35).contains(&sum), "ttft sum {sum}");

    // Non-streamed requests queue too: with both slots taken, a third waits.
    let client = client();
    let mut tasks = JoinSet::new();
    for _ in 0..3 {
        let client = client.clone();
        tasks.spawn(async move {
            let sent = Instant::now();
            let resp = post_chat(&client, addr, &chat(1, false), &[]).await;
            assert_eq!(resp.status(), StatusCode::OK);
            text_of(resp).await;
            sent.elapsed()
        });
    }
    let mut times = tasks.join_all().await;
    times.sort();
    assert!(times[1] < 180 * MS, "{times:?}");
    assert!(times[2] >= 190 * MS, "{times:?}");
}

/// Starts `n` streamed requests of 1000 tokens and returns their open responses.
async fn open_streams(sim: &Simulator, n: usize) -> Vec<hyper::Response<hyper::body::Incoming>> {
    let client = client();
    let mut open = Vec::new();
    for _ in 0..n {
        open.push(post_chat(&client, sim.addr(), &chat(1000, true), &[]).await);
    }
    open
}

#[tokio::test]
async fn past_max_waiting_requests_get_429_and_leaving_clients_free_the_queue() {
    let sim = start(SimConfig {
        ttft: 10 * MS,
        itl: 50 * MS,
        max_running: Some(1),
        max_waiting: 2,
        ..SimConfig::default()
    })
    .await;
    // One running, two waiting (their response heads come at once; the bodies wait).
    let mut open = open_streams(&sim, 3).await;
    assert!(open.iter().all(|r| r.status() == StatusCode::OK));
    wait_until("1 running, 2 waiting", || {
        (sim.running(), sim.waiting()) == (1, 2)
    })
    .await;

    let client = client();
    for body in [chat(1, true), chat(1, false)] {
        let resp = post_chat(&client, sim.addr(), &body, &[]).await;
        assert_eq!(error_of(resp, 429).await, "RateLimitError");
    }
    assert_eq!(sim.requests_received(), 5);

    // A queued client that goes away leaves the queue; then there is room again.
    drop(open.pop());
    wait_until("1 waiting", || sim.waiting() == 1).await;
    let resp = post_chat(&client, sim.addr(), &chat(1, true), &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    wait_until("2 waiting", || sim.waiting() == 2).await;

    // The running client goes away: the next in line runs.
    drop(open.remove(0));
    wait_until("the next runs", || (sim.running(), sim.waiting()) == (1, 1)).await;
    let mut body = open.remove(0).into_body();
    assert!(next_frame(&mut body).await.unwrap().is_some());
    drop(body);
    drop(resp);
    wait_until("all gone", || (sim.running(), sim.waiting()) == (0, 0)).await;
    let text = sim.metrics_text();
    assert_eq!(sample(&text, "vllm:request_success_total", &["abort"]), 4.0);
}

#[tokio::test]
async fn metrics_expose_vllm_names_labels_and_counts() {
    let sim = start(SimConfig {
        models: vec!["demo".to_owned(), "other".to_owned()],
        ttft: 5 * MS,
        itl: 5 * MS,
        kv_cache_tokens: 100,
        ..SimConfig::default()
    })
    .await;
    let addr = sim.addr();
    let client = client();

    // Before any request every metric is there, at zero.
    let text = scrape(addr).await;
    for name in [
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:time_to_first_token_seconds_count",
        "vllm:inter_token_latency_seconds_count",
        "vllm:e2e_request_latency_seconds_count",
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
    ] {
        assert_eq!(
            sample(&text, name, &["model_name=\"demo\"", "engine=\"0\""]),
            0.0,
            "{name}"
        );
    }
    for reason in ["length", "abort"] {
        let label = format!("finished_reason=\"{reason}\"");
        let labels = [label.as_str(), "model_name=\"demo\"", "engine=\"0\""];
        assert_eq!(sample(&text, "vllm:request_success_total", &labels), 0.0);
    }
    assert_eq!(
        sample(&text, "infergate_sim_requests_received_total", &[]),
        0.0
    );
    for (name, buckets) in [
        ("vllm:time_to_first_token_seconds", 22),
        ("vllm:inter_token_latency_seconds", 19),
        ("vllm:e2e_request_latency_seconds", 21),
    ] {
        let bucket = format!("{name}_bucket{{");
        let n = text.lines().filter(|l| l.starts_with(&bucket)).count();
        assert_eq!(n, buckets + 1, "{name}: vLLM's bounds and +Inf");
    }
    assert!(text.contains("le=\"2560\""));
    assert!(text.contains("le=\"7680\""));

    // 3 streamed chats (2 prompt tokens, 4 output), 1 completion (3 prompt, 2 output).
    for _ in 0..3 {
        let resp = post_chat(&client, addr, &chat(4, true), &[]).await;
        text_of(resp).await;
    }
    let completion = serde_json::json!({"model": "other", "prompt": "a b c", "max_tokens": 2});
    let resp = post(&client, addr, "/v1/completions", &completion, &[])
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    text_of(resp).await;
    // An unknown model is received but never reaches the engine.
    let mut unknown = chat(4, false);
    unknown["model"] = "nope".into();
    let resp = post_chat(&client, addr, &unknown, &[]).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    text_of(resp).await;

    // A stream that stalls after 1 token holds its slot and KV cache: (10 + 1) / 100.
    let resp = post_chat(
        &client,
        addr,
        &chat_with_prompt(10, 8, true),
        &[("x-sim-fault", "stall-after=1")],
    )
    .await;
    let mut body = resp.into_body();
    next_frame(&mut body).await.unwrap(); // role
    next_frame(&mut body).await.unwrap(); // token 0
    let text = scrape(addr).await;
    assert_eq!(sample(&text, "vllm:num_requests_running", &[]), 1.0);
    let kv = sample(&text, "vllm:kv_cache_usage_perc", &[]);
    assert!((kv - 0.11).abs() < 1e-9, "kv usage {kv}");
    drop(body);

    let text = wait_for_metrics(addr, "the abort", |t| {
        sample(t, "vllm:request_success_total", &["abort"]) == 1.0
    })
    .await;
    let count = |name: &str| sample(&text, name, &[]);
    assert_eq!(count("infergate_sim_requests_received_total"), 6.0);
    assert_eq!(sim.requests_received(), 6);
    assert_eq!(count("vllm:num_requests_running"), 0.0);
    assert_eq!(count("vllm:num_requests_waiting"), 0.0);
    assert_eq!(count("vllm:kv_cache_usage_perc"), 0.0);
    assert_eq!(count("vllm:prompt_tokens_total"), (3 * 2 + 3 + 10) as f64);
    assert_eq!(
        count("vllm:generation_tokens_total"),
        (3 * 4 + 2 + 1) as f64
    );
    assert_eq!(count("vllm:time_to_first_token_seconds_count"), 5.0);
    assert_eq!(count("vllm:inter_token_latency_seconds_count"), 10.0);
    assert_eq!(count("vllm:e2e_request_latency_seconds_count"), 4.0);
    assert_eq!(
        sample(&text, "vllm:request_success_total", &["length"]),
        4.0
    );
    // Every token gap was 5 ms; TTFT 5 ms; e2e 5 + 3 * 5 or 5 + 5 ms.
    let itl_sum = count("vllm:inter_token_latency_seconds_sum");
    assert!((itl_sum - 0.05).abs() < 1e-6, "{itl_sum}");
    let e2e_sum = count("vllm:e2e_request_latency_seconds_sum");
    assert!((e2e_sum - (3.0 * 0.02 + 0.01)).abs() < 1e-3, "{e2e_sum}");
    // Only the first served model labels the engine metrics.
    assert!(!text.contains("model_name=\"other\""));
}

#[tokio::test]
async fn several_simulators_in_one_process_keep_their_own_metrics() {
    let a = start(SimConfig {
        ttft: MS,
        itl: MS,
        ..SimConfig::default()
    })
    .await;
    let b = start(SimConfig {
        models: vec!["b".to_owned()],
        ..SimConfig::default()
    })
    .await;
    let resp = post_chat(&client(), a.addr(), &chat(2, false), &[]).await;
    text_of(resp).await;
    let ta = scrape(a.addr()).await;
    let tb = scrape(b.addr()).await;
    assert_eq!(
        sample(&ta, "infergate_sim_requests_received_total", &[]),
        1.0
    );
    assert_eq!(
        sample(&tb, "infergate_sim_requests_received_total", &[]),
        0.0
    );
    assert_eq!(sample(&ta, "vllm:generation_tokens_total", &[]), 2.0);
    assert_eq!(
        sample(&tb, "vllm:generation_tokens_total", &["model_name=\"b\""]),
        0.0
    );
}
