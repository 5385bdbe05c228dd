//! The `infergate-sim` flags of the KV-cache model, the metric sets and the instance name.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/sim_bin.rs"]
mod sim_bin;

use std::process::Command;

use sim_bin::*;

use common::*;
use http::StatusCode;
use infergate_loadtest::sim::INSTANCE_HEADER;
use serde_json::json;

#[tokio::test]
async fn kv_model_metric_sets_and_instance_flags_apply() {
    let (_guard, addr) = spawn(&[
        "--kv-model",
        "--kv-cache-tokens",
        "64",
        "--block-size",
        "8",
        "--metrics",
        "sglang,vllm-legacy",
        "--instance",
        "pod-7",
        "--ttft-ms",
        "1",
        "--itl-ms",
        "1",
    ]);
    let client = client();
    // 64 tokens = 8 blocks of 8: 60 prompt words + 10 output tokens do not fit.
    let words = vec!["w"; 60].join(" ");
    let body = json!({"model": "demo", "messages": [{"role": "user", "content": words}], "max_tokens": 10});
    let resp = post_chat(&client, addr, &body, &[]).await;
    assert_eq!(error_of(resp, 400).await, "BadRequestError");
    let text = scrape(addr).await;
    for name in [
        "sglang:num_running_reqs{model_name=\"demo\"} 0",
        "sglang:num_queue_reqs{model_name=\"demo\"} 0",
        "sglang:token_usage{model_name=\"demo\"} 0",
        "sglang:cache_hit_rate{model_name=\"demo\"} 0",
        "vllm:gpu_cache_usage_perc{engine=\"0\",model_name=\"demo\"} 0",
        "vllm:num_preemptions_total{engine=\"0\",model_name=\"demo\"} 0",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
    assert!(!text.contains("vllm:kv_cache_usage_perc"), "{text}");
    let resp = get(&client, addr, "/v2/health/ready").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[INSTANCE_HEADER], "pod-7");
}

#[test]
fn an_unknown_metric_set_is_refused_with_exit_2() {
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--metrics", "vllm,tgi"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown metric set `tgi`"), "{stderr}");
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--block-size", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
