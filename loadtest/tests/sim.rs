//! The simulator over real sockets: routes, JSON shapes, SSE framing and timing, h2c.

// Test helpers outside #[test] fns are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infergate_loadtest::sim::{token_text, SimConfig, Simulator};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

const MS: Duration = Duration::from_millis(1);

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn h2c_client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// Short delays so that tests which do not look at timing run fast.
fn fast() -> SimConfig {
    SimConfig {
        ttft: 2 * MS,
        itl: MS,
        ..SimConfig::default()
    }
}

async fn start(cfg: SimConfig) -> Simulator {
    Simulator::start("127.0.0.1:0".parse().unwrap(), cfg)
        .await
        .unwrap()
}

async fn send(
    client: &HttpClient,
    sim: &Simulator,
    method: Method,
    path: &str,
    body: impl Into<Bytes>,
) -> Response<Incoming> {
    let req = Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", sim.addr()))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(body.into()))
        .unwrap();
    client.request(req).await.unwrap()
}

async fn post(client: &HttpClient, sim: &Simulator, path: &str, body: Value) -> Response<Incoming> {
    send(client, sim, Method::POST, path, body.to_string()).await
}

/// Status and parsed JSON body.
async fn json_of(resp: Response<Incoming>) -> (StatusCode, Value) {
    let status = resp.status();
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "application/json",
        "{status}"
    );
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// Each body frame with its arrival time since `since`.
async fn frames(resp: Response<Incoming>, since: Instant) -> Vec<(Duration, Bytes)> {
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            out.push((since.elapsed(), data));
        }
    }
    out
}

/// The SSE payloads, checking that every frame holds exactly one `data: ...\n\n` event.
fn events(frames: &[(Duration, Bytes)]) -> Vec<String> {
    frames
        .iter()
        .map(|(_, data)| {
            let text = std::str::from_utf8(data).unwrap();
            let payload = text
                .strip_prefix("data: ")
                .and_then(|t| t.strip_suffix("\n\n"))
                .unwrap_or_else(|| panic!("frame is not one SSE event: {text:?}"));
            assert!(
                !payload.contains('\n'),
                "frame holds several events: {text:?}"
            );
            payload.to_owned()
        })
        .collect()
}

/// The JSON chunks before `[DONE]`, checking that `[DONE]` comes last.
fn chunks(events: &[String]) -> Vec<Value> {
    let (done, rest) = events.split_last().unwrap();
    assert_eq!(done, "[DONE]");
    rest.iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

fn chat_body(max_tokens: u32, stream: bool, include_usage: bool) -> Value {
    json!({
        "model": "demo",
        "messages": [
            {"role": "system", "content": "you are terse"},
            {"role": "user", "content": "hello world"}
        ],
        "max_tokens": max_tokens,
        "stream": stream,
        "stream_options": {"include_usage": include_usage},
        "temperature": 0
    })
}

#[tokio::test]
async fn streaming_chat_with_usage_sends_role_tokens_usage_done() {
    let sim = start(fast()).await;
    let resp = post(
        &client(),
        &sim,
        "/v1/chat/completions",
        chat_body(5, true, true),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "text/event-stream; charset=utf-8"
    );
    let frames = frames(resp, Instant::now()).await;
    let chunks = chunks(&events(&frames));
    assert_eq!(chunks.len(), 1 + 5 + 1, "{chunks:#?}");

    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-"), "{id}");
    for chunk in &chunks {
        assert_eq!(chunk["id"], id);
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "demo");
        assert!(chunk["created"].as_u64().unwrap() > 1_600_000_000);
    }
    assert_eq!(
        chunks[0]["choices"],
        json!([{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}])
    );
    for i in 0..5u32 {
        let finish = if i == 4 { json!("length") } else { Value::Null };
        assert_eq!(
            chunks[1 + i as usize]["choices"],
            json!([{"index":0,"delta":{"content":token_text(i)},"logprobs":null,"finish_reason":finish}])
        );
        assert!(chunks[1 + i as usize].get("usage").is_none());
    }
    let usage = &chunks[6];
    assert_eq!(usage["choices"], json!([]));
    // "you are terse" + "hello world" = 5 words.
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens":5,"total_tokens":10,"completion_tokens":5})
    );
}

#[tokio::test]
async fn streaming_chat_without_include_usage_has_no_usage_chunk() {
    let sim = start(fast()).await;
    let mut body = chat_body(3, true, false);
    body.as_object_mut().unwrap().remove("stream_options");
    let resp = post(&client(), &sim, "/v1/chat/completions", body).await;
    let chunks = chunks(&events(&frames(resp, Instant::now()).await));
    assert_eq!(chunks.len(), 1 + 3);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "length");

    // include_usage: false behaves the same.
    let resp = post(
        &client(),
        &sim,
        "/v1/chat/completions",
        chat_body(3, true, false),
    )
    .await;
    assert_eq!(chunks_len(resp).await, 4);
}

async fn chunks_len(resp: Response<Incoming>) -> usize {
    chunks(&events(&frames(resp, Instant::now()).await)).len()
}

#[tokio::test]
async fn stream_events_are_separate_frames_released_after_ttft() {
    let sim = start(SimConfig {
        ttft: 200 * MS,
        itl: 50 * MS,
        ..SimConfig::default()
    })
    .await;
    let sent = Instant::now();
    let resp = post(
        &client(),
        &sim,
        "/v1/chat/completions",
        chat_body(5, true, true),
    )
    .await;
    let headers_at = sent.elapsed();
    assert!(
        headers_at < 150 * MS,
        "headers must not wait for the first token: {headers_at:?}"
    );
    let frames = frames(resp, sent).await;
    // role + 5 tokens + usage + [DONE], one frame each.
    assert_eq!(events(&frames).len(), 8);
    let first = frames[0].0;
    let last = frames[frames.len() - 1].0;
    assert!(first >= 190 * MS, "first frame after {first:?}");
    assert!(
        last - first >= 150 * MS,
        "tokens must be spaced by itl: first {first:?}, last {last:?}"
    );
    // The token frames themselves are spaced out (4 gaps of 50 ms between 5 tokens).
    let first_token = frames[1].0;
    let last_token = frames[5].0;
    assert!(last_token - first_token >= 150 * MS);
}

#[tokio::test]
async fn streaming_completions_send_text_chunks_without_role() {
    let sim = start(fast()).await;
    let body = json!({
        "model": "demo",
        "prompt": ["The quick brown fox", "jumps"],
        "max_tokens": 2,
        "stream": true,
        "stream_options": {"include_usage": true}
    });
    let resp = post(&client(), &sim, "/v1/completions", body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let chunks = chunks(&events(&frames(resp, Instant::now()).await));
    assert_eq!(chunks.len(), 2 + 1);
    assert!(chunks[0]["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(chunks[0]["object"], "text_completion");
    assert_eq!(
        chunks[0]["choices"],
        json!([{"index":0,"text":token_text(0),"logprobs":null,"finish_reason":null}])
    );
    assert_eq!(
        chunks[1]["choices"],
        json!([{"index":0,"text":token_text(1),"logprobs":null,"finish_reason":"length"}])
    );
    assert_eq!(chunks[2]["choices"], json!([]));
    assert_eq!(
        chunks[2]["usage"],
        json!({"prompt_tokens":5,"total_tokens":7,"completion_tokens":2})
    );
}

#[tokio::test]
async fn non_streaming_chat_returns_a_full_completion_after_the_last_token() {
    let sim = start(SimConfig {
        ttft: 50 * MS,
        itl: 10 * MS,
        ..SimConfig::default()
    })
    .await;
    let sent = Instant::now();
    let resp = post(
        &client(),
        &sim,
        "/v1/chat/completions",
        chat_body(4, false, false),
    )
    .await;
    let elapsed = sent.elapsed();
    assert!(
        elapsed >= 75 * MS,
        "ttft + 3 * itl = 80 ms, took {elapsed:?}"
    );
    let (status, v) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "demo");
    let text: String = (0..4).map(token_text).collect();
    assert_eq!(
        v["choices"],
        json!([{"index":0,"message":{"role":"assistant","content":text},"logprobs":null,"finish_reason":"length"}])
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens":5,"total_tokens":9,"completion_tokens":4})
    );
}

#[tokio::test]
async fn non_streaming_completions_and_output_length_rules() {
    let sim = start(SimConfig {
        default_max_tokens: 3,
        ..fast()
    })
    .await;
    let client = client();

    // No max_tokens: the configured default.
    let body = json!({"model": "demo", "prompt": "one two three four"});
    let (status, v) = json_of(post(&client, &sim, "/v1/completions", body).await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(v["object"], "text_completion");
    let text: String = (0..3).map(token_text).collect();
    assert_eq!(
        v["choices"],
        json!([{"index":0,"text":text,"logprobs":null,"finish_reason":"length"}])
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens":4,"total_tokens":7,"completion_tokens":3})
    );

    // max_completion_tokens wins over max_tokens.
    let body = json!({"model": "demo", "messages": [{"role":"user","content":"hi"}],
        "max_tokens": 2, "max_completion_tokens": 7});
    let (_, v) = json_of(post(&client, &sim, "/v1/chat/completions", body).await).await;
    assert_eq!(v["usage"]["completion_tokens"], 7);
    assert_eq!(v["usage"]["prompt_tokens"], 1);
}

#[tokio::test]
async fn unknown_model_is_vllm_404() {
    let sim = start(fast()).await;
    let mut body = chat_body(2, true, false);
    body["model"] = json!("nope");
    let (status, v) = json_of(post(&client(), &sim, "/v1/chat/completions", body).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        v,
        json!({"error":{"message":"The model `nope` does not exist.","type":"NotFoundError","param":"model","code":404}})
    );
    let body = json!({"model": "other", "input": "x"});
    let (status, v) = json_of(post(&client(), &sim, "/v1/embeddings", body).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["message"], "The model `other` does not exist.");
}

#[tokio::test]
async fn malformed_requests_are_400_in_the_error_shape() {
    let sim = start(fast()).await;
    let client = client();
    for (path, body) in [
        ("/v1/chat/completions", "{\"model\": \"demo\", "),
        ("/v1/chat/completions", "{\"model\": \"demo\"}"),
        ("/v1/chat/completions", "{\"messages\": []}"),
        (
            "/v1/completions",
            "{\"model\": \"demo\", \"prompt\": \"x\", \"max_tokens\": -3}",
        ),
        (
            "/v1/completions",
            "{\"model\": \"demo\", \"prompt\": \"x\", \"max_tokens\": 0}",
        ),
        ("/v1/completions", "[]"),
        ("/v1/embeddings", "{\"model\": \"demo\"}"),
        ("/v1/embeddings", ""),
    ] {
        let resp = send(&client, &sim, Method::POST, path, body).await;
        let (status, v) = json_of(resp).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}");
        let err = &v["error"];
        assert_eq!(err["type"], "BadRequestError", "{v}");
        assert_eq!(err["code"], 400);
        assert_eq!(err["param"], Value::Null);
        assert!(!err["message"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn unknown_routes_are_404_in_the_error_shape() {
    let sim = start(fast()).await;
    let client = client();
    for (method, path) in [
        (Method::GET, "/v1/chat/completions"),
        (Method::POST, "/v1/models"),
        (Method::GET, "/nope"),
    ] {
        let (status, v) = json_of(send(&client, &sim, method, path, "").await).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(v["error"]["type"], "NotFoundError");
        assert_eq!(v["error"]["code"], 404);
    }
}

#[tokio::test]
async fn oversized_body_is_413() {
    let sim = start(fast()).await;
    let mut stream = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let head = "POST /v1/chat/completions HTTP/1.1\r\nhost: sim\r\ncontent-type: application/json\r\ncontent-length: 17000000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("\"code\":413"), "{text}");
}

#[tokio::test]
async fn models_and_health() {
    let sim = start(SimConfig {
        models: vec!["a".to_owned(), "b".to_owned()],
        ..fast()
    })
    .await;
    let client = client();
    let (status, v) = json_of(send(&client, &sim, Method::GET, "/v1/models", "").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["object"], "list");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for (card, name) in data.iter().zip(["a", "b"]) {
        assert_eq!(card["id"], name);
        assert_eq!(card["object"], "model");
        assert_eq!(card["owned_by"], "infergate-sim");
        assert!(card["created"].as_u64().unwrap() > 1_600_000_000);
    }

    let resp = send(&client, &sim, Method::GET, "/health", "").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .is_empty());

    // A second model is served too.
    let body = json!({"model": "b", "prompt": "x", "max_tokens": 1});
    let (status, v) = json_of(post(&client, &sim, "/v1/completions", body).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["model"], "b");
}

#[tokio::test]
async fn embeddings_return_one_vector_per_input_after_ttft() {
    let sim = start(SimConfig {
        embedding_dims: 4,
        ttft: 30 * MS,
        ..fast()
    })
    .await;
    let sent = Instant::now();
    let body = json!({"model": "demo", "input": ["hello world", "bye", "hello world"]});
    let resp = post(&client(), &sim, "/v1/embeddings", body).await;
    assert!(sent.elapsed() >= 25 * MS);
    let (status, v) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "demo");
    assert_eq!(v["usage"], json!({"prompt_tokens":5,"total_tokens":5}));
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    for (i, item) in data.iter().enumerate() {
        assert_eq!(item["object"], "embedding");
        assert_eq!(item["index"], i);
        assert_eq!(item["embedding"].as_array().unwrap().len(), 4);
    }
    assert_eq!(data[0]["embedding"], data[2]["embedding"]);
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);

    let body = json!({"model": "demo", "input": "a single string"});
    let (_, v) = json_of(post(&client(), &sim, "/v1/embeddings", body).await).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["usage"]["prompt_tokens"], 3);
}

#[tokio::test]
async fn h2c_prior_knowledge_streams_and_answers() {
    let sim = start(fast()).await;
    let client = h2c_client();
    let resp = post(
        &client,
        &sim,
        "/v1/chat/completions",
        chat_body(3, true, true),
    )
    .await;
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(resp.status(), StatusCode::OK);
    let frames = frames(resp, Instant::now()).await;
    assert_eq!(chunks(&events(&frames)).len(), 1 + 3 + 1);

    let resp = post(
        &client,
        &sim,
        "/v1/completions",
        json!({"model":"demo","prompt":"hi","max_tokens":2}),
    )
    .await;
    assert_eq!(resp.version(), Version::HTTP_2);
    let (status, v) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn requests_received_counts_inference_posts() {
    let sim = start(fast()).await;
    let client = client();
    assert_eq!(sim.requests_received(), 0);
    send(&client, &sim, Method::GET, "/v1/models", "").await;
    send(&client, &sim, Method::GET, "/health", "").await;
    send(&client, &sim, Method::GET, "/v1/chat/completions", "").await;
    assert_eq!(sim.requests_received(), 0);

    let resp = post(
        &client,
        &sim,
        "/v1/chat/completions",
        chat_body(1, false, false),
    )
    .await;
    json_of(resp).await;
    let resp = post(
        &client,
        &sim,
        "/v1/completions",
        json!({"model":"demo","prompt":"x","max_tokens":1}),
    )
    .await;
    json_of(resp).await;
    let resp = post(
        &client,
        &sim,
        "/v1/embeddings",
        json!({"model":"demo","input":"x"}),
    )
    .await;
    json_of(resp).await;
    assert_eq!(sim.requests_received(), 3);

    // Refused requests were still received.
    let resp = post(
        &client,
        &sim,
        "/v1/completions",
        json!({"model":"nope","prompt":"x"}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(sim.requests_received(), 4);
}

#[tokio::test]
async fn served_version_header_is_on_every_response() {
    let sim = start(SimConfig {
        served_version: Some("v2".to_owned()),
        ..fast()
    })
    .await;
    let client = client();
    let ok = post(
        &client,
        &sim,
        "/v1/chat/completions",
        chat_body(1, true, false),
    )
    .await;
    assert_eq!(ok.headers()["x-served-version"], "v2");
    let health = send(&client, &sim, Method::GET, "/health", "").await;
    assert_eq!(health.headers()["x-served-version"], "v2");
    let missing = send(&client, &sim, Method::GET, "/nope", "").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.headers()["x-served-version"], "v2");

    let plain = start(fast()).await;
    let resp = send(&client, &plain, Method::GET, "/health", "").await;
    assert!(resp.headers().get("x-served-version").is_none());

    let bad = Simulator::start(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig {
            served_version: Some("bad\nvalue".to_owned()),
            ..SimConfig::default()
        },
    )
    .await;
    assert_eq!(bad.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn shutdown_stops_accepting_and_ends_open_streams() {
    let sim = start(SimConfig {
        ttft: MS,
        itl: 20 * MS,
        ..SimConfig::default()
    })
    .await;
    let addr = sim.addr();
    let resp = post(
        &client(),
        &sim,
        "/v1/chat/completions",
        chat_body(1000, true, false),
    )
    .await;
    let mut body = resp.into_body();
    // The stream is live: a frame arrives.
    assert!(body.frame().await.unwrap().is_ok());
    sim.shutdown();
    // The open stream ends (with an error: it was cut off) instead of running 20 s more.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = body.frame().await {}
    })
    .await;
    assert!(ended.is_ok(), "stream kept running after shutdown");
    // New connections are refused.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// Waits (up to 5 s) for the simulator's stream count to reach `n`.
async fn wait_for_active_streams(sim: &Simulator, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while sim.active_streams() != n {
        assert!(
            Instant::now() < deadline,
            "active_streams stayed {} (want {n})",
            sim.active_streams()
        );
        tokio::time::sleep(5 * MS).await;
    }
}

#[tokio::test]
async fn generation_stops_when_the_client_goes_away() {
    let sim = start(SimConfig {
        ttft: MS,
        itl: 10 * MS,
        ..SimConfig::default()
    })
    .await;
    for client in [client(), h2c_client()] {
        // 10 000 tokens at 10 ms would take 100 s.
        let resp = post(
            &client,
            &sim,
            "/v1/chat/completions",
            chat_body(10_000, true, false),
        )
        .await;
        let mut body = resp.into_body();
        assert!(body.frame().await.unwrap().is_ok());
        assert_eq!(sim.active_streams(), 1);
        drop(body);
        drop(client);
        wait_for_active_streams(&sim, 0).await;
    }

    // A stream that completes stops counting too.
    let resp = post(
        &client(),
        &sim,
        "/v1/chat/completions",
        chat_body(2, true, false),
    )
    .await;
    assert_eq!(chunks_len(resp).await, 3);
    wait_for_active_streams(&sim, 0).await;
}
