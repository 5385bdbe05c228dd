//! The simulator's other OpenAI paths over HTTP: responses, transcriptions, rerank, score.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use common::*;
use http::{header, Method, Request, StatusCode};
use http_body_util::Full;
use infergate_loadtest::sim::SimConfig;
use serde_json::{json, Value};

fn fast() -> SimConfig {
    SimConfig {
        ttft: 30 * MS,
        itl: 5 * MS,
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn responses_answer_whole_with_usage() {
    let sim = start(fast()).await;
    let body = json!({"model": "demo", "input": "hello there", "instructions": "be brief", "max_output_tokens": 3});
    let (status, v) = json_of(
        post(&client(), sim.addr(), "/v1/responses", &body, &[])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["model"], "demo");
    assert!(v["id"].as_str().unwrap().starts_with("resp"));
    assert_eq!(v["output"][0]["type"], "message");
    assert_eq!(v["output"][0]["content"][0]["type"], "output_text");
    assert_eq!(v["output"][0]["content"][0]["text"], " the quick brown");
    assert_eq!(v["usage"]["input_tokens"], 4);
    assert_eq!(v["usage"]["output_tokens"], 3);
    assert_eq!(v["usage"]["total_tokens"], 7);
    // Messages in the input count too.
    let body = json!({"model": "demo", "input": [
        {"role": "user", "content": "one two"},
        {"role": "user", "content": [{"type": "input_text", "text": "three"}]},
    ], "max_output_tokens": 1});
    let (_, v) = json_of(
        post(&client(), sim.addr(), "/v1/responses", &body, &[])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["usage"]["input_tokens"], 3, "{v}");
}

/// `(event name, data)` of each SSE event.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e.lines().find_map(|l| l.strip_prefix("event: ")).unwrap();
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (name.to_owned(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn responses_stream_their_events_on_the_token_schedule() {
    let sim = start(fast()).await;
    let body = json!({"model": "demo", "input": "a b c", "max_output_tokens": 3, "stream": true});
    let sent = Instant::now();
    let resp = post(&client(), sim.addr(), "/v1/responses", &body, &[])
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = text_of(resp).await;
    assert!(sent.elapsed() >= 40 * MS, "ttft + 2 gaps");
    let events = events(&text);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], i);
    }
    let deltas: String = events
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, " the quick brown");
    let done = &events.last().unwrap().1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["usage"]["input_tokens"], 3);
    assert_eq!(done["usage"]["output_tokens"], 3);
    assert_eq!(done["usage"]["total_tokens"], 6);
    assert_eq!(events[0].1["response"]["status"], "in_progress");
    assert_eq!(sim.active_streams(), 0);
}

/// POSTs a multipart body.
async fn post_form(
    addr: SocketAddr,
    fields: &[(&str, Option<&str>, &[u8])],
) -> http::Response<hyper::body::Incoming> {
    let boundary = "----simboundary42";
    let mut body = Vec::new();
    for (name, filename, data) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: audio/wav\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{addr}/v1/audio/transcriptions"))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    client().request(req).await.unwrap()
}

#[tokio::test]
async fn transcriptions_read_the_form() {
    let sim = start(SimConfig {
        default_max_tokens: 4,
        ..fast()
    })
    .await;
    let audio = vec![7u8; 64_000];
    let (status, v) = json_of(
        post_form(
            sim.addr(),
            &[("model", None, b"demo"), ("file", Some("a.wav"), &audio)],
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["text"], "the quick brown fox");
    assert_eq!(v["usage"], json!({"type": "duration", "seconds": 2}));
    let resp = post_form(
        sim.addr(),
        &[
            ("file", Some("a.wav"), b"RIFF"),
            ("model", None, b"demo"),
            ("response_format", None, b"text"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(text_of(resp).await, "the quick brown fox");
    let resp = post_form(
        sim.addr(),
        &[("model", None, b"nope"), ("file", Some("a.wav"), b"x")],
    )
    .await;
    assert_eq!(error_of_model(resp).await, "nope");
    let resp = post_form(sim.addr(), &[("model", None, b"demo")]).await;
    assert_eq!(error_of(resp, 400).await, "BadRequestError");
    let resp = post(
        &client(),
        sim.addr(),
        "/v1/audio/transcriptions",
        &json!({"model": "demo"}),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(error_of(resp, 400).await, "BadRequestError");
}

#[tokio::test]
async fn rerank_orders_documents_by_relevance() {
    let sim = start(fast()).await;
    let body = json!({"model": "demo", "query": "capital of france", "documents": ["paris is", "berlin", "a b c"], "top_n": 2});
    let sent = Instant::now();
    let (status, v) = json_of(
        post(&client(), sim.addr(), "/v1/rerank", &body, &[])
            .await
            .unwrap(),
    )
    .await;
    assert!(sent.elapsed() >= 30 * MS, "the time to first token applies");
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["id"].as_str().unwrap().starts_with("rerank"));
    assert_eq!(v["model"], "demo");
    assert_eq!(v["usage"]["total_tokens"], 9);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    let scores: Vec<f64> = results
        .iter()
        .map(|r| r["relevance_score"].as_f64().unwrap())
        .collect();
    assert!(scores[0] >= scores[1], "{v}");
    assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)));
    for r in results {
        let index = r["index"].as_u64().unwrap() as usize;
        assert_eq!(r["document"]["text"], body["documents"][index]);
    }
    // The same request scores the same; /rerank is the same route.
    let (_, again) = json_of(
        post(&client(), sim.addr(), "/rerank", &body, &[])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(again["results"], v["results"]);
    let bad = json!({"model": "nope", "query": "q", "documents": ["d"]});
    let resp = post(&client(), sim.addr(), "/v1/rerank", &bad, &[])
        .await
        .unwrap();
    assert_eq!(error_of_model(resp).await, "nope");
    let empty = json!({"model": "demo", "query": "q", "documents": []});
    let resp = post(&client(), sim.addr(), "/v1/rerank", &empty, &[])
        .await
        .unwrap();
    assert_eq!(error_of(resp, 400).await, "BadRequestError");
}

#[tokio::test]
async fn score_pairs_texts() {
    let sim = start(fast()).await;
    let body = json!({"model": "demo", "text_1": "what is it", "text_2": ["a cat", "a dog"]});
    let (status, v) = json_of(
        post(&client(), sim.addr(), "/v1/score", &body, &[])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["object"], "list");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for (i, d) in data.iter().enumerate() {
        assert_eq!((&d["index"], &d["object"]), (&json!(i), &json!("score")));
        assert!((0.0..=1.0).contains(&d["score"].as_f64().unwrap()));
    }
    assert_ne!(data[0]["score"], data[1]["score"]);
    assert_eq!(v["usage"]["prompt_tokens"], 10);
    let pairwise = json!({"model": "demo", "text_1": ["a", "b"], "text_2": ["c", "d"]});
    let (_, v) = json_of(
        post(&client(), sim.addr(), "/score", &pairwise, &[])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let uneven = json!({"model": "demo", "text_1": ["a", "b"], "text_2": ["c", "d", "e"]});
    let resp = post(&client(), sim.addr(), "/v1/score", &uneven, &[])
        .await
        .unwrap();
    assert_eq!(error_of(resp, 400).await, "BadRequestError");
    let bad = json!({"model": "nope", "text_1": "a", "text_2": "b"});
    let resp = post(&client(), sim.addr(), "/v1/score", &bad, &[])
        .await
        .unwrap();
    assert_eq!(error_of_model(resp).await, "nope");
    let resp = post(
        &client(),
        sim.addr(),
        "/v1/responses",
        &json!({"model": "nope", "input": "x"}),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(error_of_model(resp).await, "nope");
}

/// The model named in a 404 for an unknown model.
async fn error_of_model(resp: http::Response<hyper::body::Incoming>) -> String {
    let (status, v) = json_of(resp).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["type"], "NotFoundError");
    let message = v["error"]["message"].as_str().unwrap();
    message.split('`').nth(1).unwrap().to_owned()
}
