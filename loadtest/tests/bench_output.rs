//! What `infergate-bench` writes: the JSON document (validated against
//! docs/bench.schema.json), the CSV, the HTML report, `compare`, and runs repeated by `--seed`.

// Test helpers outside #[test] fns are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bench_util;

use bench_util::*;
use infergate_loadtest::sim::SimConfig;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_validates_against_the_schema() {
    let s = sim(SimConfig {
        ttft: 3 * MS,
        itl: MS,
        seed: Some(2),
        faults: vec![
            "status=503@0.3".parse().unwrap(),
            "drop-after=1@0.2".parse().unwrap(),
        ],
        ..SimConfig::default()
    })
    .await;
    // A single run with errors, an SLO, a label, secrets and a header.
    let (r, doc, path) = run(
        &url(&s),
        &[
            "--concurrency",
            "3",
            "--requests",
            "20",
            "--output-tokens",
            "4:1",
            "--input-tokens",
            "10:3",
            "--slo",
            "ttft=50ms,tpot=10ms,e2e=1s",
            "--label",
            "baseline",
            "--api-key",
            "sk-very-secret",
            "-H",
            "x-team: infra",
            "-H",
            "x-api-key: another-secret",
        ],
    )
    .await;
    validate_schema(&path);
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["tool"], "infergate-bench");
    assert_eq!(doc["label"], "baseline");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("sk-very-secret") && !text.contains("another-secret"));
    assert!(!r.stdout.contains("sk-very-secret") && !r.stderr.contains("sk-very-secret"));
    assert_eq!(doc["config"]["api_key"], true);
    assert!(doc["command_line"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "x-team: infra"));
    let sm = summary(&doc, 0);
    assert!(sm["errors"]["http_5xx"].as_u64().unwrap() > 0, "{sm}");
    assert_eq!(
        sm["requests"]["total"],
        sm["requests"]["ok"].as_u64().unwrap() + sm["requests"]["failed"].as_u64().unwrap()
    );
    // A sweep with a dataset-free default and an interrupted-free run of every step.
    let (_, doc, path) = run(
        &url(&s),
        &[
            "--rates",
            "50,100",
            "--requests",
            "5",
            "--output-tokens",
            "2",
        ],
    )
    .await;
    validate_schema(&path);
    assert_eq!(doc["steps"].as_array().unwrap().len(), 2);
    // The schema rejects a document that does not follow it.
    let mut bad = doc.clone();
    bad["steps"][0]["summary"]["requests"]["ok"] = Value::from("many");
    let bad_path = tmp("bad.json");
    std::fs::write(&bad_path, serde_json::to_vec(&bad).unwrap()).unwrap();
    assert!(
        schema_errors(&bad_path).is_some(),
        "an invalid document passed the schema"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_and_html_report() {
    let s = sim_timing(4, 1).await;
    let csv = tmp("records.csv");
    let html = tmp("report.html");
    let (_, doc, json_path) = run(
        &url(&s),
        &[
            "--rates",
            "40,80",
            "--requests",
            "8",
            "--output-tokens",
            "3",
            "--slo",
            "ttft=100ms",
            "--csv",
            csv.to_str().unwrap(),
            "--report",
            html.to_str().unwrap(),
        ],
    )
    .await;
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 16);
    assert!(lines[0]
        .starts_with("step,load,id,scheduled_ms,sent_ms,send_lag_ms,ttft_ms,tpot_ms,e2e_ms"));
    let cols = lines[0].split(',').count();
    for l in &lines[1..] {
        assert_eq!(l.split(',').count(), cols, "{l}");
        assert!(l.contains(",ok,"), "{l}");
    }
    assert!(lines[1].starts_with("0,rate 40/s (poisson),0,"));
    assert!(lines[16].starts_with("1,rate 80/s (poisson),7,"));

    let page = std::fs::read_to_string(&html).unwrap();
    check_report(&page, true);
    // `report` renders the same page from the JSON.
    let again = tmp("again.html");
    let r = exec(&[
        "report",
        json_path.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ])
    .await;
    r.assert_ok();
    assert_eq!(std::fs::read_to_string(&again).unwrap(), page);
    assert_eq!(doc["steps"].as_array().unwrap().len(), 2);

    // A single run: no sweep charts.
    let html1 = tmp("single.html");
    run(
        &url(&s),
        &[
            "--requests",
            "4",
            "--output-tokens",
            "3",
            "--report",
            html1.to_str().unwrap(),
        ],
    )
    .await;
    check_report(&std::fs::read_to_string(&html1).unwrap(), false);
}

fn check_report(page: &str, sweep: bool) {
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.trim_end().ends_with("</html>"));
    // Self-contained: no script, no external asset of any kind.
    for banned in [
        "<script", "src=", "href=", "url(", "@import", "<link", "<img",
    ] {
        assert!(!page.contains(banned), "the report contains {banned}");
    }
    let svgs = page.matches("<svg").count();
    assert_eq!(svgs, page.matches("</svg>").count());
    let mut titles = vec![
        "TTFT distribution",
        "TPOT distribution",
        "E2E latency distribution",
        "TTFT over time",
        "Output tokens/s over time",
    ];
    if sweep {
        titles.extend([
            "Throughput vs rate",
            "Output token throughput vs rate",
            "TTFT vs rate",
            "TPOT vs rate",
            "E2E latency vs rate",
        ]);
        assert!(svgs >= 6 + 2 * 5, "{svgs} charts");
    } else {
        assert!(!page.contains("Throughput vs"));
        assert!(svgs >= 5, "{svgs} charts");
    }
    for t in titles {
        assert!(page.contains(&format!("<title>{t}")), "no chart titled {t}");
    }
    assert!(page.contains("<table>") && page.contains("Summary"));
    assert!(page.contains("TPOT excludes the first token and is averaged per request"));
    assert!(page.contains("guidellm") && page.contains("llmperf"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_prints_ratios_against_the_first_run() {
    let fast = sim_timing(5, 10).await;
    let slow = sim_timing(5, 20).await;
    let args = [
        "--concurrency",
        "2",
        "--requests",
        "6",
        "--output-tokens",
        "6",
        "--seed",
        "9",
    ];
    let (_, _, a) = run(&url(&fast), &[&args[..], &["--label", "fast"]].concat()).await;
    let (_, _, b) = run(&url(&slow), &[&args[..], &["--label", "slow"]].concat()).await;
    let r = exec(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]).await;
    r.assert_ok();
    let out = &r.stdout;
    assert!(
        out.contains("A = fast") && out.contains("B = slow"),
        "{out}"
    );
    let ratio = |metric: &str| -> f64 {
        let line = out
            .lines()
            .find(|l| l.starts_with(metric))
            .unwrap_or_else(|| panic!("no {metric} line in\n{out}"));
        let r = line.split('×').nth(1).unwrap().trim();
        r.parse().unwrap()
    };
    let tpot = ratio("TPOT p50 (ms)");
    assert!((1.8..=2.2).contains(&tpot), "TPOT ratio {tpot}\n{out}");
    let rps = ratio("requests/s");
    // E2E 5 + 5×10 = 55 ms vs 5 + 5×20 = 105 ms.
    assert!((0.4..=0.7).contains(&rps), "throughput ratio {rps}\n{out}");
    assert!(
        out.contains("same requests as A") && out.contains("yes"),
        "{out}"
    );
    // compare needs two files, and good ones.
    assert_eq!(exec(&["compare", a.to_str().unwrap()]).await.code, Some(2));
    let junk = tmp("junk.json");
    std::fs::write(&junk, "{}").unwrap();
    let r = exec(&["compare", a.to_str().unwrap(), junk.to_str().unwrap()]).await;
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("not an infergate-bench result"),
        "{}",
        r.stderr
    );
}

/// The same seed sends the same prompts, lengths and schedule, whatever the thread count;
/// another seed does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_repeats_prompts_lengths_and_schedule() {
    let s = sim_timing(2, 1).await;
    let base = [
        "--rate",
        "50",
        "--requests",
        "15",
        "--input-tokens",
        "30:10",
        "--output-tokens",
        "6:3",
    ];
    let go = |seed: &'static str, threads: &'static str| {
        let url = url(&s);
        async move {
            let (_, doc, _) = run(
                &url,
                &[&base[..], &["--seed", seed, "--threads", threads]].concat(),
            )
            .await;
            doc
        }
    };
    let a = go("11", "2").await;
    let b = go("11", "1").await;
    let c = go("12", "2").await;
    let key = |d: &Value| -> Vec<(f64, Value, Value)> {
        records(d, 0)
            .iter()
            .map(|r| {
                (
                    f(&r["scheduled_ms"]),
                    r["max_tokens"].clone(),
                    r["input_tokens"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(key(&a), key(&b));
    assert_ne!(key(&a), key(&c));
    let digest = |d: &Value| summary(d, 0)["workload_digest"].clone();
    assert_eq!(digest(&a), digest(&b));
    assert_ne!(digest(&a), digest(&c));
    assert_eq!(a["config"]["seed"], 11);
    // The lengths vary within a run (the stddev is used).
    let lens: std::collections::BTreeSet<String> =
        key(&a).iter().map(|k| k.2.to_string()).collect();
    assert!(lens.len() > 3, "{lens:?}");
    // Without --seed a random one is drawn and recorded, so the run can be repeated.
    let (_, d, _) = run(&url(&s), &["--requests", "1", "--output-tokens", "1"]).await;
    assert!(d["config"]["seed"].as_u64().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_lines_on_a_pipe_and_usage_errors() {
    let s = sim_timing(2, 1).await;
    let url = url(&s);
    let r = exec(&[
        "run",
        "--url",
        &url,
        "--model",
        "demo",
        "--rate",
        "20",
        "--duration",
        "1500ms",
        "--output-tokens",
        "2",
    ])
    .await;
    r.assert_ok();
    // stderr is a pipe: plain lines, no carriage returns.
    assert!(!r.stderr.contains('\r'));
    let lines: Vec<&str> = r.stderr.lines().filter(|l| l.contains("sent ")).collect();
    assert!(lines.len() >= 2, "{}", r.stderr);
    assert!(lines
        .iter()
        .all(|l| l.contains("done") && l.contains("errors") && l.contains("TTFT p50")));
    assert!(r.stdout.contains("TTFT") && r.stdout.contains("send lag"));
    // Bad flags exit 2.
    for bad in [
        vec![
            "run",
            "--url",
            &url,
            "--model",
            "demo",
            "--rate",
            "1",
            "--concurrency",
            "2",
        ],
        vec!["run", "--url", &url, "--model", "demo", "--slo", "itl=5ms"],
        vec![
            "run",
            "--url",
            &url,
            "--model",
            "demo",
            "--input-tokens",
            "0",
        ],
        vec![
            "run",
            "--url",
            &url,
            "--model",
            "demo",
            "--duration",
            "soon",
        ],
    ] {
        assert_eq!(exec(&bad).await.code, Some(2), "{bad:?}");
    }
    // A bad URL or dataset exits 1 with a message.
    let r = exec(&["run", "--url", "https://x", "--model", "demo"]).await;
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("https is not supported"), "{}", r.stderr);
    let r = exec(&[
        "run",
        "--url",
        &url,
        "--model",
        "demo",
        "--dataset",
        "/nonexistent.jsonl",
    ])
    .await;
    assert_eq!(r.code, Some(1));
}
