//! The data plane end to end: real `infergate` and `infergate-sim` processes on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use http::StatusCode;
use infergate_e2e::*;

const CHAT_STREAM: &str = r#"{"model":"demo","messages":[{"role":"user","content":"hello there"}],"max_tokens":8,"stream":true,"stream_options":{"include_usage":true}}"#;

#[tokio::test]
async fn stream_through_gateway_is_byte_identical_to_direct() {
    let sim = Sim::start(&["--ttft-ms", "20", "--itl-ms", "5", "--deterministic"]).await;
    let gw = Gateway::start(&Gateway::config(&[sim.url()], "")).await;
    for (path, body) in [
        ("/v1/chat/completions", CHAT_STREAM.to_owned()),
        (
            "/v1/completions",
            r#"{"model":"demo","prompt":"The quick brown fox","max_tokens":5,"stream":true}"#
                .to_owned(),
        ),
        (
            "/v1/chat/completions",
            CHAT_STREAM.replace("\"stream\":true", "\"stream\":false"),
        ),
        (
            "/v1/embeddings",
            r#"{"model":"demo","input":["a b","c"]}"#.to_owned(),
        ),
    ] {
        let hdr = [("x-request-id", "fixed-id-1")];
        let direct = post_with(sim.addr, path, &body, &hdr).await;
        let via = post_with(gw.data, path, &body, &hdr).await;
        assert_eq!(direct.status, StatusCode::OK, "{path}");
        assert_eq!(via.status, StatusCode::OK, "{path}");
        assert!(!direct.body().is_empty());
        assert_eq!(
            String::from_utf8_lossy(&via.body()),
            String::from_utf8_lossy(&direct.body()),
            "{path} {body}"
        );
        assert_eq!(via.headers["content-type"], direct.headers["content-type"]);
        assert_eq!(via.headers["x-request-id"], "fixed-id-1");
    }
}

#[tokio::test]
async fn events_arrive_when_the_upstream_sends_them() {
    let sim = Sim::start(&["--ttft-ms", "300", "--itl-ms", "50"]).await;
    let gw = Gateway::start(&Gateway::config(&[sim.url()], "")).await;
    let r = post(gw.data, "/v1/chat/completions", CHAT_STREAM).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.contains_key("x-request-id"));
    let events = r.events();
    // role chunk, 8 token chunks, usage chunk, [DONE]
    assert_eq!(events.len(), 11, "{events:?}");
    let first = events[0].0 - r.sent;
    assert!(
        first >= Duration::from_millis(280) && first < Duration::from_millis(600),
        "first event after {first:?}"
    );
    // Token events are spread out, not delivered in one burst.
    let tokens: Vec<_> = events[1..9].iter().map(|(t, _)| *t).collect();
    let spread = tokens[7] - tokens[0];
    assert!(
        spread >= Duration::from_millis(7 * 50 * 8 / 10),
        "spread {spread:?}"
    );
    let distinct_gaps = tokens
        .windows(2)
        .filter(|w| w[1] - w[0] >= Duration::from_millis(25))
        .count();
    assert!(
        distinct_gaps >= 6,
        "token gaps: {:?}",
        tokens.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn ttft_and_tpot_metrics_match_the_upstream() {
    let sim = Sim::start(&["--ttft-ms", "300", "--itl-ms", "50"]).await;
    let gw = Gateway::start(&Gateway::config(&[sim.url()], "")).await;
    let runs = 4;
    let mut tasks = Vec::new();
    for _ in 0..runs {
        let addr = gw.data;
        tasks.push(tokio::spawn(async move {
            post(addr, "/v1/chat/completions", CHAT_STREAM).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().status, StatusCode::OK);
    }
    let m = gw.metrics().await;
    let model = [("model", "demo")];
    let count = metric_sum(&m, "infergate_time_to_first_token_seconds_count", &model);
    assert_eq!(count, runs as f64, "{m}");
    let ttft = metric_sum(&m, "infergate_time_to_first_token_seconds_sum", &model) / count;
    let tpot = metric_sum(&m, "infergate_time_per_output_token_seconds_sum", &model)
        / metric_sum(&m, "infergate_time_per_output_token_seconds_count", &model);
    assert!((ttft - 0.300).abs() <= 0.030, "mean TTFT {ttft}");
    assert!((tpot - 0.050).abs() <= 0.005, "mean TPOT {tpot}");
    assert_eq!(
        metric_sum(&m, "infergate_output_tokens_total", &model),
        8.0 * runs as f64
    );
    assert_eq!(
        metric_sum(
            &m,
            "infergate_requests_total",
            &[("model", "demo"), ("outcome", "success")]
        ),
        runs as f64
    );
    assert!(metric_sum(&m, "infergate_input_tokens_total", &model) > 0.0);
    // Load is released when streams end.
    assert_eq!(
        metric_sum(&m, "infergate_endpoint_in_flight", &[]),
        0.0,
        "{m}"
    );
}

#[tokio::test]
async fn non_streaming_usage_is_counted() {
    let sim = Sim::start(&["--ttft-ms", "5", "--itl-ms", "1"]).await;
    let gw = Gateway::start(&Gateway::config(&[sim.url()], "")).await;
    let r = post(
        gw.data,
        "/v1/completions",
        r#"{"model":"demo","prompt":"one two three","max_tokens":6}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["usage"]["completion_tokens"], 6);
    let m = gw.metrics().await;
    assert_eq!(
        metric_sum(&m, "infergate_output_tokens_total", &[("model", "demo")]),
        6.0
    );
    assert_eq!(
        metric_sum(&m, "infergate_input_tokens_total", &[("model", "demo")]),
        3.0
    );
    assert_eq!(
        metric_sum(&m, "infergate_time_to_first_token_seconds_count", &[]),
        0.0
    );
}

fn assert_openai_error(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(&r.body()));
    assert_eq!(r.headers["content-type"], "application/json");
    let v = r.json();
    let e = &v["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(e["type"].is_string(), "{v}");
    assert_eq!(e["code"], code, "{v}");
}

#[tokio::test]
async fn client_errors_have_status_and_openai_body() {
    let sim = Sim::start(&[]).await;
    let extra = "    limits: {}\n";
    let cfg = Gateway::config(&[sim.url()], extra)
        .replace("listeners:", "limits: { max_body_bytes: 1KiB }\nlisteners:");
    let gw = Gateway::start(&cfg).await;
    let a = gw.data;
    let r = post(
        a,
        "/v1/chat/completions",
        r#"{"model":"nope","messages":[]}"#,
    )
    .await;
    assert_openai_error(&r, StatusCode::NOT_FOUND, "model_not_found");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nope"));
    assert_openai_error(
        &post(a, "/v1/chat/completions", "{not json").await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );
    assert_openai_error(
        &post(a, "/v1/chat/completions", r#"{"messages":[]}"#).await,
        StatusCode::BAD_REQUEST,
        "missing_model",
    );
    let big = format!(r#"{{"model":"demo","prompt":"{}"}}"#, "x".repeat(2000));
    assert_openai_error(
        &post(a, "/v1/completions", &big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
    );
    assert_openai_error(
        &post(a, "/v2/whatever", "{}").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_openai_error(
        &get(a, "/v1/chat/completions").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    // Every reply carries a request id.
    assert_eq!(r.headers["x-request-id"].len(), 32);

    let m = gw.metrics().await;
    assert_eq!(
        metric_sum(
            &m,
            "infergate_requests_total",
            &[("outcome", "unknown_model")]
        ),
        1.0
    );
    assert_eq!(
        metric_sum(
            &m,
            "infergate_requests_total",
            &[("outcome", "bad_request")]
        ),
        4.0
    );
    assert_eq!(
        metric_sum(
            &m,
            "infergate_requests_total",
            &[("outcome", "body_too_large")]
        ),
        1.0
    );
}

#[tokio::test]
async fn upstream_errors_have_status_and_openai_body() {
    let gw = Gateway::start(&Gateway::config(&[closed_port_url()], "")).await;
    let r = post(gw.data, "/v1/chat/completions", CHAT_STREAM).await;
    assert_openai_error(&r, StatusCode::BAD_GATEWAY, "upstream_connect_error");

    let slow = Sim::start(&["--ttft-ms", "3000"]).await;
    let extra = "    timeouts: { first_token: 200ms }\n";
    let gw = Gateway::start(&Gateway::config(&[slow.url()], extra)).await;
    let r = post(gw.data, "/v1/chat/completions", CHAT_STREAM).await;
    assert_openai_error(
        &r,
        StatusCode::GATEWAY_TIMEOUT,
        "upstream_first_token_timeout",
    );
    assert!(r.head_at - r.sent < Duration::from_millis(2000));
    let m = gw.metrics().await;
    assert_eq!(
        metric_sum(
            &m,
            "infergate_requests_total",
            &[("outcome", "timeout_first_token")]
        ),
        1.0
    );

    // Every endpoint full: 503.
    let extra = "    limits: { max_in_flight_per_endpoint: 1 }\n";
    let gw = Gateway::start(&Gateway::config(&[slow.url()], extra)).await;
    let addr = gw.data;
    let held = tokio::spawn(async move { post(addr, "/v1/chat/completions", CHAT_STREAM).await });
    // Wait until the first request holds the endpoint.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while metric_sum(&gw.metrics().await, "infergate_endpoint_in_flight", &[]) < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "first request never went in flight"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = post(gw.data, "/v1/chat/completions", CHAT_STREAM).await;
    assert_openai_error(&r, StatusCode::SERVICE_UNAVAILABLE, "no_healthy_endpoint");
    assert_eq!(held.await.unwrap().status, StatusCode::OK);
}

#[tokio::test]
async fn h2c_models_list_and_health() {
    let sim = Sim::start(&["--ttft-ms", "5", "--itl-ms", "1"]).await;
    let gw = Gateway::start(&Gateway::config(&[sim.url()], "")).await;
    let r = send(
        gw.data,
        post_request(gw.data, "/v1/chat/completions", CHAT_STREAM, &[]),
        true,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.version, http::Version::HTTP_2);
    assert_eq!(r.events().last().unwrap().1, "[DONE]");

    let models = get(gw.data, "/v1/models").await;
    assert_eq!(models.status, StatusCode::OK);
    let v = models.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "demo");

    assert_eq!(get(gw.admin, "/healthz").await.status, StatusCode::OK);
    assert_eq!(get(gw.admin, "/readyz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn client_disconnect_releases_the_endpoint() {
    let sim = Sim::start(&["--ttft-ms", "10", "--itl-ms", "100"]).await;
    let gw = Gateway::start(&Gateway::config(&[sim.url()], "")).await;
    let body = CHAT_STREAM.replace("\"max_tokens\":8", "\"max_tokens\":200");
    let addr = gw.data;
    let task = tokio::spawn(async move { post(addr, "/v1/chat/completions", &body).await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while metric_sum(&gw.metrics().await, "infergate_endpoint_in_flight", &[]) < 1.0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    task.abort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let m = gw.metrics().await;
        if metric_sum(&m, "infergate_endpoint_in_flight", &[]) == 0.0 {
            assert_eq!(
                metric_sum(
                    &m,
                    "infergate_requests_total",
                    &[("outcome", "client_cancelled")]
                ),
                1.0,
                "{m}"
            );
            // TTFT was seen before the client left.
            assert_eq!(
                metric_sum(&m, "infergate_time_to_first_token_seconds_count", &[]),
                1.0
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "in-flight never returned to 0"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn openai_python_client_streams_through_the_gateway() {
    let sim = Sim::start(&["--ttft-ms", "20", "--itl-ms", "5"]).await;
    let gw = Gateway::start(&Gateway::config(&[sim.url()], "")).await;
    let script = repo_root().join("tests/python/openai_stream.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = tokio::process::Command::new(python)
        .arg(script)
        .arg(format!("http://{}/v1", gw.data))
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "openai client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["chunks_with_content"], 12);
    assert_eq!(v["completion_tokens"], 12);
    assert!(v["text"].as_str().unwrap().split_whitespace().count() >= 12);
    assert_eq!(v["models"], serde_json::json!(["demo"]));
    assert_eq!(v["not_found_status"], 404);
}
