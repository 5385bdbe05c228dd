//! How `infergate-bench` classifies failures: HTTP 4xx/5xx, timeouts, connection failures and
//! stream errors (a cut stream, an SSE error event, a body that is not a finished stream), and
//! that nothing a server sends makes it fail.

// Test helpers outside #[test] fns are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bench_util;

use bench_util::*;
use infergate_loadtest::sim::SimConfig;
use serde_json::Value;

fn kinds(doc: &Value) -> Vec<String> {
    records(doc, 0)
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_statuses_are_classified() {
    let s = sim_timing(2, 1).await;
    for (fault, kind, status) in [
        ("status=503", "http_5xx", 503),
        ("status=500", "http_5xx", 500),
        ("status=429", "http_4xx", 429),
        ("status=400", "http_4xx", 400),
    ] {
        let header = format!("x-sim-fault: {fault}");
        let (_, doc, _) = run(
            &url(&s),
            &["--concurrency", "2", "--requests", "4", "-H", &header],
        )
        .await;
        let sm = summary(&doc, 0);
        assert_eq!(sm["requests"]["failed"], 4, "{fault}: {sm}");
        assert_eq!(sm["requests"]["ok"], 0);
        assert_eq!(sm["errors"][kind], 4, "{fault}: {sm}");
        assert!(sm["ttft_ms"].is_null());
        assert_eq!(sm["throughput"]["requests_per_s"], 0.0);
        for r in records(&doc, 0) {
            assert_eq!(r["kind"], kind);
            assert_eq!(r["status"], status);
            let err = r["error"].as_str().unwrap();
            assert!(err.starts_with(&format!("HTTP {status}")), "{err}");
            assert!(r["ttft_ms"].is_null());
        }
    }
}

/// `drop-after=2`: two token events, then the connection is cut: a stream error that keeps
/// what was measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_stream_is_a_stream_error() {
    let s = sim_timing(5, 2).await;
    let (_, doc, _) = run(
        &url(&s),
        &[
            "--concurrency",
            "2",
            "--requests",
            "4",
            "--output-tokens",
            "8",
            "-H",
            "x-sim-fault: drop-after=2",
        ],
    )
    .await;
    assert_eq!(summary(&doc, 0)["errors"]["stream_error"], 4);
    for r in records(&doc, 0) {
        assert_eq!(r["kind"], "stream_error");
        assert_eq!(r["status"], 200);
        assert_eq!(r["token_events"], 2);
        assert_eq!(r["output_tokens"], 2);
        assert_eq!(r["usage_reported"], false);
        assert!(r["ttft_ms"].as_f64().is_some());
        assert!(
            r["error"].as_str().unwrap().contains("stream cut after 2"),
            "{r}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_connection_failures() {
    let s = sim_timing(2, 1).await;
    let (_, doc, _) = run(
        &url(&s),
        &[
            "--concurrency",
            "2",
            "--requests",
            "2",
            "--timeout",
            "300ms",
            "-H",
            "x-sim-fault: hang",
        ],
    )
    .await;
    assert_eq!(summary(&doc, 0)["errors"]["timeout"], 2);
    for r in records(&doc, 0) {
        assert_eq!(r["kind"], "timeout");
        assert!(r["status"].is_null());
        let e2e = f(&r["e2e_ms"]);
        assert!((290.0..2000.0).contains(&e2e), "{e2e}");
    }
    // A stall after one token: a timeout that keeps the TTFT.
    let (_, doc, _) = run(
        &url(&s),
        &[
            "--requests",
            "1",
            "--timeout",
            "300ms",
            "-H",
            "x-sim-fault: stall-after=1",
        ],
    )
    .await;
    let r = &records(&doc, 0)[0];
    assert_eq!(r["kind"], "timeout");
    assert_eq!(r["status"], 200);
    assert_eq!(r["token_events"], 1);
    assert!(r["ttft_ms"].as_f64().is_some());

    // Nothing listens on a port just released.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (_, doc, _) = run(
        &format!("http://127.0.0.1:{port}"),
        &["--concurrency", "2", "--requests", "3"],
    )
    .await;
    assert_eq!(summary(&doc, 0)["errors"]["connect"], 3);
    assert_eq!(kinds(&doc), vec!["connect"; 3]);
    assert!(records(&doc, 0)[0]["error"]
        .as_str()
        .unwrap()
        .contains("onnect"));
}

/// Faults drawn by the simulator for half the requests: every request is either ok or a 5xx,
/// and the counts add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_outcomes_add_up() {
    let s = sim(SimConfig {
        ttft: 2 * MS,
        itl: MS,
        seed: Some(3),
        faults: vec!["status=503@0.5".parse().unwrap()],
        ..SimConfig::default()
    })
    .await;
    let (_, doc, _) = run(
        &url(&s),
        &[
            "--concurrency",
            "4",
            "--requests",
            "40",
            "--output-tokens",
            "3",
        ],
    )
    .await;
    let sm = summary(&doc, 0);
    let ok = sm["requests"]["ok"].as_u64().unwrap();
    let bad = sm["errors"]["http_5xx"].as_u64().unwrap();
    assert_eq!(ok + bad, 40, "{sm}");
    assert!(ok > 5 && bad > 5, "{sm}");
    assert_eq!(sm["requests"]["failed"].as_u64(), Some(bad));
    assert_eq!(sm["ttft_ms"]["count"].as_u64(), Some(ok));
}

const ROLE: &[u8] =
    b"data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
const TOKEN: &[u8] = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" hi\"}}]}\n\n";
const DONE: &[u8] = b"data: [DONE]\n\n";

fn script(path: &str) -> Vec<&'static [u8]> {
    match path {
        // The gateway's error event after a stall.
        "/error-event/v1/chat/completions" => vec![
            ROLE,
            TOKEN,
            b"data: {\"error\":{\"code\":\"upstream_stalled\",\"message\":\"upstream sent nothing within the idle timeout\",\"param\":null,\"type\":\"server_error\"}}\n\n",
        ],
        // A server that ignores `stream` and answers JSON.
        "/json/v1/chat/completions" => vec![
            b"{\"choices\":[{\"message\":{\"content\":\"hi\"}}]}",
        ],
        // Bytes that are neither SSE nor UTF-8, then an end without [DONE].
        "/garbage/v1/chat/completions" => vec![
            b"\xff\xfe\x00data:\xc3\x28\n\ndata: {\"choices\":[{\"delta\":{\"content\":{\"a\":1}}}]}\n\n",
            b"data: {\"choices\":\"x\"}\n\ndata: {{{{\n\n",
        ],
        // Two tokens per event, with usage: output tokens from usage, TPOT over N − 1.
        "/bundled/v1/chat/completions" => vec![
            ROLE,
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" a b\"}}]}\n\n",
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" c d\"}}]}\n\n",
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" e f\"},\"finish_reason\":\"length\"}]}\n\n",
            b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":6,\"total_tokens\":9}}\n\n",
            DONE,
        ],
        _ => vec![TOKEN, DONE],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_servers_are_classified_without_failing() {
    let addr = scripted_server(script, 20 * MS).await;
    let base = format!("http://{addr}");

    let (_, doc, _) = run(&format!("{base}/error-event/v1"), &["--requests", "2"]).await;
    for r in records(&doc, 0) {
        assert_eq!(r["kind"], "stream_error");
        assert_eq!(r["token_events"], 1);
        let e = r["error"].as_str().unwrap();
        assert!(
            e.contains("SSE error event") && e.contains("idle timeout"),
            "{e}"
        );
    }

    for path in ["/json/v1", "/garbage/v1"] {
        let (_, doc, _) = run(&format!("{base}{path}"), &["--requests", "2"]).await;
        for r in records(&doc, 0) {
            assert_eq!(r["kind"], "stream_error", "{path}: {r}");
            assert_eq!(r["token_events"], 0, "{path}: {r}");
            assert!(r["error"].as_str().unwrap().contains("without [DONE]"));
        }
    }

    let (_, doc, _) = run(&format!("{base}/bundled/v1"), &["--requests", "2"]).await;
    for r in records(&doc, 0) {
        assert_eq!(r["kind"], "ok", "{r}");
        assert_eq!(r["token_events"], 3);
        assert_eq!(r["output_tokens"], 6);
        assert_eq!(r["input_tokens"], 3);
        assert_eq!(r["usage_reported"], true);
        // (last − first token event) / (6 − 1): two 20 ms gaps over 5.
        let tpot = f(&r["tpot_ms"]);
        assert!((5.0..=15.0).contains(&tpot), "{tpot}");
        assert_eq!(r["itl_ms"].as_array().unwrap().len(), 2);
    }
}
