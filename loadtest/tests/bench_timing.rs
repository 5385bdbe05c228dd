//! `infergate-bench` against the simulator's known timing: TTFT, TPOT, ITL and closed-loop
//! throughput read back as configured; open-loop arrivals follow the rate with a small send
//! lag. Bounds are generous: these run on shared CI machines.

// Test helpers outside #[test] fns are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bench_util;

use bench_util::*;

/// TTFT 100 ms and ITL 20 ms read back; 4 concurrent requests of 10 tokens each take
/// 100 + 9 × 20 = 280 ms, so the closed loop completes 4 / 0.28 s = 14.3 requests/s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_reads_the_simulators_timing() {
    let _g = TIMING.lock().await;
    let s = sim_timing(100, 20).await;
    let (_, doc, _) = run(
        &url(&s),
        &[
            "--concurrency",
            "4",
            "--requests",
            "40",
            "--output-tokens",
            "10",
            "--input-tokens",
            "16",
            "--seed",
            "1",
        ],
    )
    .await;
    let sm = summary(&doc, 0);
    assert_eq!(sm["requests"]["ok"], 40, "{sm}");
    assert_eq!(sm["requests"]["failed"], 0);
    let ttft = f(&sm["ttft_ms"]["p50"]);
    assert!((99.0..=106.0).contains(&ttft), "TTFT p50 {ttft} ms");
    let tpot = f(&sm["tpot_ms"]["p50"]);
    assert!((18.0..=22.0).contains(&tpot), "TPOT p50 {tpot} ms");
    let tpot_mean = f(&sm["tpot_ms"]["mean"]);
    assert!(
        (18.0..=22.0).contains(&tpot_mean),
        "TPOT mean {tpot_mean} ms"
    );
    let itl = f(&sm["itl_ms"]["p50"]);
    assert!((17.0..=23.0).contains(&itl), "ITL p50 {itl} ms");
    assert_eq!(sm["itl_ms"]["count"], 40 * 9);
    let e2e = f(&sm["e2e_ms"]["p50"]);
    assert!((275.0..=320.0).contains(&e2e), "E2E p50 {e2e} ms");
    let rps = f(&sm["throughput"]["requests_per_s"]);
    let expected = 4.0 / 0.280;
    assert!(
        (rps - expected).abs() / expected <= 0.15,
        "{rps} req/s, expected {expected:.2}"
    );
    // Token counts come from usage: 10 output tokens, 16 prompt words.
    assert_eq!(sm["tokens"]["output"], 400);
    assert_eq!(sm["tokens"]["input"], 40 * 16);
    let out_tps = f(&sm["throughput"]["output_tokens_per_s"]);
    assert!((out_tps - 10.0 * rps).abs() < 1e-6 * out_tps.max(1.0));
    assert_eq!(sm["concurrency"]["max"], 4);
    for r in records(&doc, 0) {
        assert_eq!(r["kind"], "ok");
        assert_eq!(r["status"], 200);
        assert_eq!(r["output_tokens"], 10);
        assert_eq!(r["token_events"], 10);
        assert_eq!(r["usage_reported"], true);
        assert_eq!(r["input_tokens"], 16);
        assert_eq!(r["max_tokens"], 10);
        assert_eq!(r["itl_ms"].as_array().unwrap().len(), 9);
        // TPOT = (last − first token) / (N − 1) = the mean of the 9 gaps.
        let gaps: f64 = r["itl_ms"].as_array().unwrap().iter().map(f).sum();
        assert!((f(&r["tpot_ms"]) - gaps / 9.0).abs() < 0.01, "{r}");
        assert!(f(&r["e2e_ms"]) >= f(&r["ttft_ms"]) + gaps - 0.01);
    }
}

/// A Poisson run at 40/s for 3 s sends about 120 requests (a Poisson count: within 4
/// standard deviations), spaced 25 ms apart on average, each close to its scheduled time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisson_arrivals_match_the_rate_with_small_send_lag() {
    let _g = TIMING.lock().await;
    let s = sim_timing(5, 2).await;
    let (_, doc, _) = run(
        &url(&s),
        &[
            "--rate",
            "40",
            "--duration",
            "3s",
            "--output-tokens",
            "4",
            "--input-tokens",
            "8",
            "--seed",
            "5",
        ],
    )
    .await;
    let sm = summary(&doc, 0);
    let n = sm["requests"]["total"].as_u64().unwrap();
    let (mean, sd) = (120.0, 120f64.sqrt());
    assert!(
        (n as f64 - mean).abs() <= 4.0 * sd,
        "{n} arrivals in 3 s at 40/s"
    );
    assert_eq!(sm["requests"]["ok"].as_u64(), Some(n));
    let recs = records(&doc, 0);
    let sched: Vec<f64> = recs.iter().map(|r| f(&r["scheduled_ms"])).collect();
    assert!(
        sched.windows(2).all(|w| w[0] <= w[1]),
        "ids follow arrivals"
    );
    assert!(sched.iter().all(|t| (0.0..3000.0).contains(t)));
    let mean_gap = sched[sched.len() - 1] / sched.len() as f64;
    assert!((15.0..=40.0).contains(&mean_gap), "mean gap {mean_gap} ms");
    // Send lag: actual − scheduled.
    for r in recs {
        let lag = f(&r["sent_ms"]) - f(&r["scheduled_ms"]);
        assert!((lag - f(&r["send_lag_ms"])).abs() < 0.002, "{r}");
        assert!(lag >= 0.0);
    }
    // Generous bounds (a shared CI machine); an idle one shows a mean of ~0.2 ms. A
    // generator that fell behind its schedule would be seconds late by the end.
    let lag = &sm["send_lag_ms"];
    assert!(f(&lag["mean"]) < 10.0, "send lag {lag}");
    assert!(f(&lag["p99"]) < 50.0, "send lag {lag}");
    // The duration covers the schedule and the last response.
    let dur = f(&sm["duration_s"]);
    assert!((2.5..=4.0).contains(&dur), "{dur}");
}

/// `--arrival constant`: request i is scheduled at exactly i / rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constant_arrivals_are_evenly_spaced() {
    let _g = TIMING.lock().await;
    let s = sim_timing(5, 1).await;
    let (_, doc, _) = run(
        &url(&s),
        &[
            "--rate",
            "20",
            "--arrival",
            "constant",
            "--requests",
            "12",
            "--output-tokens",
            "2",
        ],
    )
    .await;
    let recs = records(&doc, 0);
    assert_eq!(recs.len(), 12);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r["id"], i as u64);
        let want = i as f64 * 50.0;
        assert!((f(&r["scheduled_ms"]) - want).abs() < 0.01, "{r}");
        // Generous: a shared CI machine can delay a thread by tens of ms.
        assert!(f(&r["sent_ms"]) - want < 100.0, "{r}");
    }
    assert_eq!(
        doc["steps"][0]["load"],
        serde_json::json!({"kind": "rate", "rate": 20.0, "arrival": "constant"})
    );
}
