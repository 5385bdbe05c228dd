//! The `infergate-sim` binary: the announce line, serving, signals, bind failures, and the
//! flags of the timing, capacity, metrics and fault model.

// Test helpers outside #[test] fns are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/sim_bin.rs"]
mod sim_bin;

use std::net::SocketAddr;
use std::process::{Child, Command};

use sim_bin::*;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

async fn get(addr: SocketAddr, path: &str) -> (http::StatusCode, http::HeaderMap, Bytes) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let resp = client
        .get(format!("http://{addr}{path}").parse().unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, body)
}

#[cfg(unix)]
fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[cfg(unix)]
#[tokio::test]
async fn serves_on_the_announced_address_and_exits_0_on_sigterm() {
    let (mut guard, addr) = spawn(&["--model", "a", "--model", "b", "--served-version", "v7"]);
    let (status, headers, body) = get(addr, "/v1/models").await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-served-version"], "v7");
    let models: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b"]);

    signal(&guard.0, "TERM");
    let status = guard.0.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[cfg(unix)]
#[tokio::test]
async fn exits_0_on_sigint_and_defaults_to_the_demo_model() {
    let (mut guard, addr) = spawn(&[]);
    let (status, _, body) = get(addr, "/v1/models").await;
    assert_eq!(status, 200);
    let models: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(models["data"][0]["id"], "demo");
    signal(&guard.0, "INT");
    assert_eq!(guard.0.wait().unwrap().code(), Some(0));
}

#[test]
fn bind_failure_exits_1_with_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["--listen", &addr])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

#[test]
fn help_documents_every_flag() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--model",
        "--ttft-ms",
        "--ttft-stddev-ms",
        "--itl-ms",
        "--itl-stddev-ms",
        "--prefill-ms-per-1k-tokens",
        "--seed",
        "--max-tokens",
        "--max-running",
        "--max-waiting",
        "--kv-cache-tokens",
        "--fault",
        "--startup-ms",
        "--served-version",
        "--embedding-dims",
        "--deterministic",
        "x-sim-fault",
        "stall-after=N",
        "drop-after=N",
        "hang-body",
        "/metrics",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn invalid_flags_exit_2() {
    for args in [
        &["--fault", "explode"][..],
        &["--fault", "hang@2"],
        &["--fault", "status=200"],
        &["--max-running", "0"],
        &["--kv-cache-tokens", "0"],
        &["--prefill-ms-per-1k-tokens", "-1"],
        &["--prefill-ms-per-1k-tokens", "inf"],
    ] {
        let out = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[tokio::test]
async fn model_flags_reach_the_simulator() {
    let (_guard, addr) = spawn(&[
        "--model",
        "a",
        "--model",
        "b",
        "--served-version",
        "v9",
        "--ttft-ms",
        "5",
        "--ttft-stddev-ms",
        "2",
        "--itl-ms",
        "1",
        "--itl-stddev-ms",
        "0",
        "--prefill-ms-per-1k-tokens",
        "2.5",
        "--max-tokens",
        "3",
        "--deterministic",
        "--seed",
        "4",
        "--fault",
        "status=503@0.5",
        "--max-running",
        "1",
        "--max-waiting",
        "0",
        "--kv-cache-tokens",
        "100",
    ]);
    let client = common::client();
    let body = serde_json::json!({"model": "b", "messages": [{"role": "user", "content": "hi"}]});
    let mut faults = 0;
    for _ in 0..40 {
        let resp = common::post(&client, addr, "/v1/chat/completions", &body, &[])
            .await
            .unwrap();
        assert_eq!(resp.headers()["x-served-version"], "v9");
        match resp.status().as_u16() {
            200 => {
                let (_, v) = common::json_of(resp).await;
                assert_eq!(v["usage"]["completion_tokens"], 3, "--max-tokens");
                assert_eq!(v["id"], "chatcmpl-0", "--deterministic");
            }
            503 => {
                common::error_of(resp, 503).await;
                faults += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!((8..=32).contains(&faults), "{faults} of 40");

    // --max-running 1 --max-waiting 0: with a stalled stream running, the next gets 429.
    let stalled = common::post(
        &client,
        addr,
        "/v1/chat/completions",
        &serde_json::json!({"model": "a", "messages": [{"role": "user", "content": "hi"}],
            "stream": true}),
        &[("x-sim-fault", "stall-after=1")],
    )
    .await
    .unwrap();
    assert_eq!(stalled.status(), 200);
    let mut stalled = stalled.into_body();
    common::next_frame(&mut stalled).await.unwrap(); // role
    common::next_frame(&mut stalled).await.unwrap(); // token 0
    let resp = common::post(
        &client,
        addr,
        "/v1/chat/completions",
        &body,
        &[("x-sim-fault", "none")],
    )
    .await
    .unwrap();
    assert_eq!(common::error_of(resp, 429).await, "RateLimitError");

    let text = common::scrape(addr).await;
    assert_eq!(
        common::sample(&text, "infergate_sim_requests_received_total", &[]),
        42.0
    );
    assert_eq!(
        common::sample(&text, "vllm:num_requests_running", &["model_name=\"a\""]),
        1.0
    );
    // The stalled stream holds 1 prompt token + 1 generated of 100.
    let kv = common::sample(&text, "vllm:kv_cache_usage_perc", &[]);
    assert!((kv - 0.02).abs() < 1e-9, "{kv}");
}

#[tokio::test]
async fn startup_ms_answers_503_until_ready() {
    let (_guard, addr) = spawn(&["--startup-ms", "500"]);
    let (status, _, body) = get(addr, "/health").await;
    assert_eq!(status, 503, "{body:?}");
    common::wait_for_health(addr).await;
}
