//! The data plane end to end: real `infergate` and `infergate-sim` processes on loopback. When
//! events arrive, the TTFT and TPOT metrics and a client that goes away are tested in process on
//! a paused clock: gateway/tests/component.
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

    // Every endpoint full: 503. (A first-token timeout, the 504, is tested in process on a
    // paused clock: gateway/tests/component.)
    let slow = Sim::start(&["--ttft-ms", "3000"]).await;
    let extra = "    limits: { max_in_flight_per_endpoint: 1 }\n";
    let gw = Gateway::start(&Gateway::config(&[slow.url()], extra)).await;
    let addr = gw.data;
    let held = tokio::spawn(async move { post(addr, "/v1/chat/completions", CHAT_STREAM).await });
    // Wait until the first request holds the endpoint.
    gw.wait_metric(
        "infergate_endpoint_in_flight",
        &[],
        1.0,
        Duration::from_secs(10),
    )
    .await;
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
