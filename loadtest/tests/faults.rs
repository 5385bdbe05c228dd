//! Faults on demand: by configuration (drawn per request) and by the `x-sim-fault` header,
//! and the slow start.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use http::{header, StatusCode};
use infergate_loadtest::sim::{Fault, FaultRule, SimConfig, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Short delays; faults from `faults`.
fn cfg(faults: &[&str]) -> SimConfig {
    SimConfig {
        ttft: 5 * MS,
        itl: 5 * MS,
        faults: faults.iter().map(|f| f.parse().unwrap()).collect(),
        ..SimConfig::default()
    }
}

const FAULT: &str = "x-sim-fault";

/// How long a client waits before it decides that nothing more is coming.
const PATIENCE: Duration = Duration::from_millis(300);

#[tokio::test]
async fn status_faults_answer_at_once_with_an_openai_error() {
    let sim = start(SimConfig {
        ttft: Duration::from_secs(5),
        ..cfg(&["status=503"])
    })
    .await;
    let client = client();
    let sent = Instant::now();
    let resp = post_chat(&client, sim.addr(), &chat(4, true), &[]).await;
    assert_eq!(error_of(resp, 503).await, "ServiceUnavailableError");
    assert!(sent.elapsed() < Duration::from_secs(1), "not at once");

    for (spec, status, kind) in [
        ("status=429", 429, "RateLimitError"),
        ("status=500", 500, "InternalServerError"),
    ] {
        let resp = post_chat(&client, sim.addr(), &chat(4, false), &[(FAULT, spec)]).await;
        assert_eq!(error_of(resp, status).await, kind);
    }
    // Embeddings fault too.
    let body = serde_json::json!({"model": "demo", "input": "x"});
    let resp = post(&client, sim.addr(), "/v1/embeddings", &body, &[])
        .await
        .unwrap();
    assert_eq!(error_of(resp, 503).await, "ServiceUnavailableError");
    assert_eq!(sim.requests_received(), 4, "faulted requests still count");
    // Other routes are not faulted.
    assert_eq!(get(&client, sim.addr(), "/health").await.status(), 200);
}

#[tokio::test]
async fn hang_never_sends_a_response_head() {
    let sim = start(cfg(&[])).await;
    let client = client();
    for stream in [true, false] {
        let body = chat(2, stream);
        let pending = post_chat(&client, sim.addr(), &body, &[(FAULT, "hang")]);
        let waited = tokio::time::timeout(PATIENCE, pending).await;
        assert!(waited.is_err(), "a hung request got a response head");
    }
    assert_eq!(sim.requests_received(), 2);
    // The simulator still serves other requests.
    let resp = post_chat(&client, sim.addr(), &chat(2, false), &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn hang_body_sends_an_event_stream_head_and_nothing_else() {
    let sim = start(cfg(&["hang-body"])).await;
    let resp = post_chat(&client(), sim.addr(), &chat(2, false), &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "text/event-stream; charset=utf-8"
    );
    let mut body = resp.into_body();
    let waited = tokio::time::timeout(PATIENCE, next_frame(&mut body)).await;
    assert!(waited.is_err(), "hang-body sent {waited:?}");
}

#[tokio::test]
async fn stall_after_sends_n_tokens_then_silence_holding_its_slot() {
    let sim = start(cfg(&[])).await;
    let resp = post_chat(
        &client(),
        sim.addr(),
        &chat(10, true),
        &[(FAULT, "stall-after=2")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let mut events = Vec::new();
    for _ in 0..3 {
        let frame = tokio::time::timeout(PATIENCE, next_frame(&mut body))
            .await
            .expect("the first events come on time")
            .unwrap()
            .unwrap();
        events.push(String::from_utf8(frame.to_vec()).unwrap());
    }
    assert!(events[0].contains("\"role\":\"assistant\""), "{events:?}");
    assert!(events[1].contains("\" the\""), "{events:?}");
    assert!(events[2].contains("\" quick\""), "{events:?}");
    let more = tokio::time::timeout(PATIENCE, next_frame(&mut body)).await;
    assert!(more.is_err(), "a stalled stream sent {more:?}");
    assert_eq!(sim.running(), 1, "the stalled request keeps its slot");
    drop(body);
    wait_until("the slot to be freed", || sim.running() == 0).await;

    // Not streamed: the response never comes.
    let (client, body) = (client(), chat(10, false));
    let pending = post_chat(&client, sim.addr(), &body, &[(FAULT, "stall-after=2")]);
    assert!(tokio::time::timeout(PATIENCE, pending).await.is_err());
}

#[tokio::test]
async fn drop_after_sends_n_tokens_then_breaks_the_body() {
    let sim = start(cfg(&[])).await;
    for client in [client(), h2c_client()] {
        let resp = post_chat(
            &client,
            sim.addr(),
            &chat(10, true),
            &[(FAULT, "drop-after=2")],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let mut body = resp.into_body();
        let mut events = 0;
        let end = loop {
            match tokio::time::timeout(PATIENCE, next_frame(&mut body))
                .await
                .expect("the stream neither ended nor broke")
            {
                Ok(Some(_)) => events += 1,
                other => break other,
            }
        };
        assert_eq!(events, 3, "role + 2 tokens");
        assert!(
            end.is_err(),
            "the client must see a broken body, got {end:?}"
        );
    }

    // Not streamed: the connection closes without a response.
    let resp = post(
        &client(),
        sim.addr(),
        "/v1/chat/completions",
        &chat(10, false),
        &[(FAULT, "drop-after=2")],
    )
    .await;
    assert!(resp.is_err(), "got {resp:?}");
    let text = wait_for_metrics(sim.addr(), "3 aborts", |t| {
        sample(t, "vllm:request_success_total", &["abort"]) == 3.0
    })
    .await;
    assert_eq!(sample(&text, "vllm:num_requests_running", &[]), 0.0);
}

#[tokio::test]
async fn drop_after_leaves_an_incomplete_chunked_body_on_the_wire() {
    let sim = start(cfg(&["drop-after=1"])).await;
    let mut stream = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let body = chat(5, true).to_string();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: sim\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the connection stayed open");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("transfer-encoding: chunked"), "{text}");
    assert_eq!(text.matches("data: ").count(), 2, "role + 1 token: {text}");
    assert!(!text.contains("[DONE]"), "{text}");
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "the chunked body ended cleanly: {text}"
    );
}

#[tokio::test]
async fn delay_holds_the_response_head() {
    let sim = start(cfg(&["delay=300"])).await;
    let client = client();
    for stream in [true, false] {
        let sent = Instant::now();
        let resp = post_chat(&client, sim.addr(), &chat(2, stream), &[]).await;
        let head = sent.elapsed();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(head >= 290 * MS, "head after {head:?}");
        assert!(head < 2000 * MS, "head after {head:?}");
        text_of(resp).await;
    }
    // The header overrides the flag.
    let sent = Instant::now();
    let resp = post_chat(&client, sim.addr(), &chat(2, true), &[(FAULT, "delay=0")]).await;
    assert!(sent.elapsed() < 250 * MS);
    text_of(resp).await;
}

#[tokio::test]
async fn slow_start_answers_503_then_serves() {
    let sim = start(SimConfig {
        startup: 400 * MS,
        ..cfg(&[])
    })
    .await;
    let client = client();
    let health = get(&client, sim.addr(), "/health").await;
    assert_eq!(error_of(health, 503).await, "ServiceUnavailableError");
    let resp = post_chat(&client, sim.addr(), &chat(2, true), &[]).await;
    assert_eq!(error_of(resp, 503).await, "ServiceUnavailableError");
    assert_eq!(sim.requests_received(), 1);

    wait_for_health(sim.addr()).await;
    let resp = post_chat(&client, sim.addr(), &chat(2, false), &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(sim.requests_received(), 2);
}

/// How many of `n` sequential requests were faulted with 500.
async fn faulted(sim: &Simulator, n: usize) -> usize {
    let client = client();
    let mut faults = 0;
    for _ in 0..n {
        let resp = post_chat(&client, sim.addr(), &chat(1, false), &[]).await;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::INTERNAL_SERVER_ERROR => faults += 1,
            other => panic!("unexpected {other}"),
        }
        text_of(resp).await;
    }
    faults
}

#[tokio::test]
async fn fault_rates_hit_about_that_fraction_repeatably_with_a_seed() {
    let fast = |seed| SimConfig {
        ttft: Duration::ZERO,
        itl: Duration::ZERO,
        seed: Some(seed),
        faults: vec!["status=500@0.5".parse().unwrap()],
        ..SimConfig::default()
    };
    let a = faulted(&start(fast(5)).await, 200).await;
    assert!((60..=140).contains(&a), "{a} of 200");
    let b = faulted(&start(fast(5)).await, 200).await;
    assert_eq!(a, b, "the same seed draws the same faults");

    // Rate 0 never hits; rate 1 always does.
    let mut never = fast(1);
    never.faults = vec![FaultRule {
        fault: Fault::Status(500),
        rate: 0.0,
    }];
    assert_eq!(faulted(&start(never).await, 20).await, 0);
    let mut always = fast(1);
    always.faults = vec![FaultRule::always(Fault::Status(500))];
    assert_eq!(faulted(&start(always).await, 20).await, 20);
}

#[tokio::test]
async fn rules_are_drawn_in_order_and_the_header_overrides_them() {
    let sim = start(cfg(&["hang@0", "status=502", "status=503"])).await;
    let client = client();
    let resp = post_chat(&client, sim.addr(), &chat(2, false), &[]).await;
    assert_eq!(error_of(resp, 502).await, "InternalServerError");

    let resp = post_chat(
        &client,
        sim.addr(),
        &chat(2, false),
        &[(FAULT, "status=429")],
    )
    .await;
    assert_eq!(error_of(resp, 429).await, "RateLimitError");

    let resp = post_chat(&client, sim.addr(), &chat(2, false), &[(FAULT, "none")]).await;
    let (status, v) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["usage"]["completion_tokens"], 2);

    for bad in ["explode", "status=200", "stall-after=x"] {
        let resp = post_chat(&client, sim.addr(), &chat(2, false), &[(FAULT, bad)]).await;
        let (status, v) = json_of(resp).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(FAULT),
            "{v}"
        );
    }
    assert_eq!(sim.requests_received(), 6);
}
