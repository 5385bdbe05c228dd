//! Sweeps (one step, summary and record list per rate or concurrency), warm-up requests that
//! are sent but not counted, goodput under an SLO that half the requests meet, datasets and
//! the completions API.

// Test helpers outside #[test] fns are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bench_util;

use bench_util::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_sweep_has_one_step_per_rate() {
    let s = sim_timing(5, 2).await;
    let (r, doc, _) = run(
        &url(&s),
        &[
            "--rates",
            "10,20,40",
            "--requests",
            "12",
            "--output-tokens",
            "3",
        ],
    )
    .await;
    let steps = doc["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    assert_eq!(doc["config"]["sweep"], "rate");
    for (i, (step, rate)) in steps.iter().zip([10.0, 20.0, 40.0]).enumerate() {
        assert_eq!(step["index"], i);
        assert_eq!(
            step["load"],
            json!({"kind": "rate", "rate": rate, "arrival": "poisson"})
        );
        assert_eq!(step["summary"]["requests"]["ok"], 12);
        assert_eq!(step["records"].as_array().unwrap().len(), 12);
    }
    // The same requests in every step (the seed and the index pick them).
    let d0 = &steps[0]["summary"]["workload_digest"];
    assert!(steps.iter().all(|s| &s["summary"]["workload_digest"] == d0));
    // One text summary per step.
    for i in 1..=3 {
        assert!(
            r.stdout.contains(&format!("== step {i}/3: rate")),
            "{}",
            r.stdout
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_sweep_has_one_step_per_concurrency_and_warmup_is_not_counted() {
    let s = sim_timing(5, 2).await;
    let (r, doc, _) = run(
        &url(&s),
        &[
            "--concurrencies",
            "1,3",
            "--requests",
            "6",
            "--warmup",
            "2",
            "--output-tokens",
            "3",
        ],
    )
    .await;
    let steps = doc["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(doc["config"]["sweep"], "concurrency");
    assert_eq!(
        steps[0]["load"],
        json!({"kind": "concurrency", "concurrency": 1})
    );
    assert_eq!(
        steps[1]["load"],
        json!({"kind": "concurrency", "concurrency": 3})
    );
    assert_eq!(steps[0]["summary"]["concurrency"]["max"], 1);
    assert!(steps[1]["summary"]["concurrency"]["max"].as_u64().unwrap() <= 3);
    for st in steps {
        assert_eq!(st["summary"]["requests"]["total"], 6);
        let ids: Vec<u64> = st["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, (0..6).collect::<Vec<_>>());
    }
    // 2 steps × (2 warm-up + 6 measured) reached the server.
    assert_eq!(s.requests_received(), 16, "{}", r.stderr);
}

/// Half the dataset asks for 2 tokens (E2E ≈ 10 + 20 = 30 ms), half for 20 (≈ 390 ms):
/// exactly half meet `e2e=200ms`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goodput_counts_the_requests_that_meet_every_slo() {
    let s = sim_timing(10, 20).await;
    let data = tmp("half.jsonl");
    let mut lines = String::new();
    for i in 0..10 {
        let max = if i % 2 == 0 { 2 } else { 20 };
        if i % 3 == 0 {
            lines.push_str(&format!(
                "{{\"messages\":[{{\"role\":\"user\",\"content\":\"question number {i}\"}}],\"max_tokens\":{max}}}\n"
            ));
        } else {
            lines.push_str(&format!(
                "{{\"prompt\":\"prompt {i}\",\"max_tokens\":{max}}}\n"
            ));
        }
    }
    std::fs::write(&data, lines).unwrap();
    let (r, doc, _) = run(
        &url(&s),
        &[
            "--concurrency",
            "5",
            "--requests",
            "10",
            "--dataset",
            data.to_str().unwrap(),
            "--slo",
            "ttft=500ms,e2e=200ms",
        ],
    )
    .await;
    let sm = summary(&doc, 0);
    assert_eq!(sm["requests"]["ok"], 10);
    let g = &sm["goodput"];
    assert_eq!(g["good_requests"], 5, "{g}");
    assert_eq!(g["attainment_pct"], 50.0);
    assert_eq!(
        g["slo"],
        json!({"ttft_ms": 500.0, "tpot_ms": null, "e2e_ms": 200.0})
    );
    let rps = f(&g["requests_per_s"]);
    assert!((rps - 5.0 / f(&sm["duration_s"])).abs() < 1e-6, "{g}");
    assert!(r.stdout.contains("goodput"), "{}", r.stdout);
    // Every dataset line was used once (10 requests, 10 lines).
    let mut maxes: Vec<u64> = records(&doc, 0)
        .iter()
        .map(|r| r["max_tokens"].as_u64().unwrap())
        .collect();
    maxes.sort_unstable();
    assert_eq!(maxes, [vec![2; 5], vec![20; 5]].concat());
    assert!(doc["config"]["input_tokens"].is_null());
    // A TPOT SLO every request misses (TPOT is 20 ms).
    let (_, doc, _) = run(
        &url(&s),
        &[
            "--requests",
            "2",
            "--dataset",
            data.to_str().unwrap(),
            "--slo",
            "tpot=5",
        ],
    )
    .await;
    assert_eq!(summary(&doc, 0)["goodput"]["good_requests"], 0);
    assert_eq!(summary(&doc, 0)["goodput"]["attainment_pct"], 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_completions_api() {
    let s = sim_timing(2, 1).await;
    let (_, doc, _) = run(
        &url(&s),
        &[
            "--api",
            "completions",
            "--requests",
            "3",
            "--input-tokens",
            "7",
            "--output-tokens",
            "5",
        ],
    )
    .await;
    assert_eq!(
        doc["config"]["endpoint"],
        format!("{}/v1/completions", url(&s))
    );
    let sm = summary(&doc, 0);
    assert_eq!(sm["requests"]["ok"], 3, "{sm}");
    assert_eq!(sm["tokens"]["output"], 15);
    assert_eq!(sm["tokens"]["input"], 21);
}
