//! Tests of the metric names and labels.
#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn every_metric_is_exposed_with_vllm_labels() {
    let m = Metrics::new("demo", 100).unwrap();
    m.kv_acquire(30);
    m.observe_ttft(Duration::from_millis(30));
    let text = m.render();
    for name in [
        "vllm:num_requests_running{engine=\"0\",model_name=\"demo\"} 0",
        "vllm:num_requests_waiting{engine=\"0\",model_name=\"demo\"} 0",
        "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"demo\"} 0.3",
        "vllm:time_to_first_token_seconds_bucket{engine=\"0\",model_name=\"demo\",le=\"0.04\"} 1",
        "vllm:time_to_first_token_seconds_count{engine=\"0\",model_name=\"demo\"} 1",
        "vllm:inter_token_latency_seconds_count{engine=\"0\",model_name=\"demo\"} 0",
        "vllm:e2e_request_latency_seconds_bucket{engine=\"0\",model_name=\"demo\",le=\"7680\"} 0",
        "vllm:prompt_tokens_total{engine=\"0\",model_name=\"demo\"} 0",
        "vllm:generation_tokens_total{engine=\"0\",model_name=\"demo\"} 0",
        "vllm:request_success_total{engine=\"0\",finished_reason=\"length\",model_name=\"demo\"} 0",
        "vllm:request_success_total{engine=\"0\",finished_reason=\"abort\",model_name=\"demo\"} 0",
        "infergate_sim_requests_received_total 0",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
    m.kv_acquire(1000);
    assert_eq!(m.kv_usage(), 1.0);
    m.kv_release(u64::MAX);
    assert_eq!(m.kv_usage(), 0.0);
}
