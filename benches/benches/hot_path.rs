//! Micro-benchmarks of the gateway's per-request hot path, each next to a naive baseline
//! measured in the same run:
//!
//! * `model_field`: [`extract_model`] vs parsing the whole body into a `serde_json::Value`;
//! * `sse`: [`SseObserver::observe`] over a vLLM chat stream vs parsing every event into a
//!   `Value`;
//! * `json_usage`: [`JsonUsageScanner::observe`] over a non-streamed completion vs buffering
//!   the body and parsing it into a `Value`.
//!
//! Run with `cargo bench -p infergate-benches --bench hot_path`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use infergate_gateway::model_field::extract_model;
use infergate_gateway::observe::{JsonUsageScanner, SseObserver};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

/// A typical small chat request (~300 B), `model` first as in most hand-written clients.
const SMALL_CHAT: &str = concat!(
    r#"{"model":"demo","messages":[{"role":"system","content":"You are a helpful assistant."},"#,
    r#"{"role":"user","content":"Write a haiku about the sea, then explain its meter in one "#,
    r#"short sentence."}],"max_tokens":128,"temperature":0.7,"top_p":0.95,"stream":true,"#,
    r#""stream_options":{"include_usage":true},"user":"bench-client-0001"}"#
);

/// A chat request with a ~100 KB user prompt full of escapes (quotes, newlines, tabs,
/// backslashes and `\u` escapes). `messages` comes before `model`, as openai-python sends it.
fn large_chat() -> Vec<u8> {
    const SEGMENT: &str =
        r#"He said \"look at this\":\n\tC:\\temp\\caf\u00e9.txt \u2014 then {left} [quickly]; "#;
    let mut prompt = String::with_capacity(101 * 1024);
    while prompt.len() < 100 * 1024 {
        prompt.push_str(SEGMENT);
    }
    let body = format!(
        concat!(
            r#"{{"messages":[{{"role":"system","content":"You are a careful code reviewer."}},"#,
            r#"{{"role":"user","content":"{}"}}],"model":"demo","max_tokens":512,"#,
            r#""temperature":0,"stream":false}}"#
        ),
        prompt
    );
    body.into_bytes()
}

const CHUNK_ID: &str = "chatcmpl-9a3b17db895b3ac7";
const CREATED: u64 = 1795951400;
/// Output tokens in the benchmark stream.
const STREAM_TOKENS: usize = 256;

/// Token texts as they appear inside a JSON string (already escaped).
const WORDS: &[&str] = &[
    " word",
    " the",
    " model",
    ",",
    " stream",
    "ing",
    " of",
    " tokens",
    ".",
    "\\n",
    " \\\"",
    "quoted",
    "\\\"",
    " caf\\u00e9",
    " and",
    " so",
    " on",
];

/// A vLLM chat completion stream: the role chunk, 256 token chunks (the last with
/// `finish_reason: "length"`), the usage chunk and `[DONE]`, each event its own frame.
fn vllm_chat_stream() -> Vec<Vec<u8>> {
    let mut frames = Vec::with_capacity(STREAM_TOKENS + 3);
    frames.push(format!(
        concat!(
            r#"data: {{"id":"{}","object":"chat.completion.chunk","created":{},"model":"tiny-llama","#,
            r#""choices":[{{"index":0,"delta":{{"role":"assistant","content":""}},"logprobs":null,"#,
            r#""finish_reason":null}}]}}"#,
            "\n\n"
        ),
        CHUNK_ID, CREATED
    ));
    for i in 0..STREAM_TOKENS {
        let finish = if i + 1 == STREAM_TOKENS {
            r#""length""#
        } else {
            "null"
        };
        frames.push(format!(
            concat!(
                r#"data: {{"id":"{}","object":"chat.completion.chunk","created":{},"model":"tiny-llama","#,
                r#""choices":[{{"index":0,"delta":{{"content":"{}"}},"logprobs":null,"#,
                r#""finish_reason":{},"token_ids":null}}]}}"#,
                "\n\n"
            ),
            CHUNK_ID,
            CREATED,
            WORDS[i % WORDS.len()],
            finish
        ));
    }
    frames.push(format!(
        concat!(
            r#"data: {{"id":"{}","object":"chat.completion.chunk","created":{},"model":"tiny-llama","#,
            r#""choices":[],"usage":{{"prompt_tokens":12,"total_tokens":{},"completion_tokens":{}}}}}"#,
            "\n\n"
        ),
        CHUNK_ID,
        CREATED,
        12 + STREAM_TOKENS,
        STREAM_TOKENS
    ));
    frames.push("data: [DONE]\n\n".to_owned());
    frames.into_iter().map(String::into_bytes).collect()
}

/// A ~4 KB non-streamed `chat.completion` body with `usage` at the end, in three frames.
fn completion_frames() -> Vec<Vec<u8>> {
    let mut content = String::new();
    let mut i = 0;
    while content.len() < 3800 {
        content.push_str(WORDS[i % WORDS.len()]);
        i += 1;
    }
    let body = format!(
        concat!(
            r#"{{"id":"{}","object":"chat.completion","created":{},"model":"tiny-llama","#,
            r#""choices":[{{"index":0,"message":{{"role":"assistant","content":"{}","#,
            r#""refusal":null,"annotations":null,"audio":null,"function_call":null,"tool_calls":[],"#,
            r#""reasoning_content":null}},"logprobs":null,"finish_reason":"length","stop_reason":null,"#,
            r#""token_ids":null}}],"service_tier":null,"system_fingerprint":null,"#,
            r#""usage":{{"prompt_tokens":12,"total_tokens":{},"completion_tokens":{},"#,
            r#""prompt_tokens_details":null}},"prompt_logprobs":null,"prompt_token_ids":null,"#,
            r#""kv_transfer_params":null}}"#
        ),
        CHUNK_ID,
        CREATED,
        content,
        12 + i,
        i
    )
    .into_bytes();
    let (a, b) = (body.len() / 3, 2 * body.len() / 3);
    vec![body[..a].to_vec(), body[a..b].to_vec(), body[b..].to_vec()]
}

// ---------------------------------------------------------------------------------------------
// Naive baselines
// ---------------------------------------------------------------------------------------------

/// Parses the whole body into a `Value` and reads `model`.
fn model_via_value(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v["model"].as_str().map(str::to_owned)
}

fn non_empty(v: &Value) -> bool {
    match v {
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => false,
    }
}

/// What [`SseObserver`] computes, done the obvious way: buffer lines, parse every `data:`
/// payload into a `Value`, then look for token fields and `usage`.
#[derive(Default)]
struct NaiveSse {
    buf: Vec<u8>,
    token_events: u64,
    completion_tokens: Option<u64>,
}

impl NaiveSse {
    fn observe(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(nl) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let line = &self.buf[start..start + nl];
            start += nl + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let data = data.strip_prefix(b" ").unwrap_or(data);
            if data == b"[DONE]" || data.is_empty() {
                continue;
            }
            let Ok(v) = serde_json::from_slice::<Value>(data) else {
                continue;
            };
            let has_token = v["choices"].as_array().is_some_and(|cs| {
                cs.iter().any(|c| {
                    let d = &c["delta"];
                    non_empty(&c["text"])
                        || non_empty(&d["content"])
                        || non_empty(&d["reasoning_content"])
                        || non_empty(&d["reasoning"])
                        || non_empty(&d["tool_calls"])
                })
            });
            if has_token {
                self.token_events += 1;
            }
            if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
                self.completion_tokens = Some(n);
            }
        }
        self.buf.drain(..start);
    }
}

/// Buffers the whole body, parses it into a `Value` and reads `usage.completion_tokens`.
fn usage_via_value(frames: &[Vec<u8>]) -> Option<u64> {
    let mut body = Vec::new();
    for f in frames {
        body.extend_from_slice(f);
    }
    let v: Value = serde_json::from_slice(&body).ok()?;
    v["usage"]["completion_tokens"].as_u64()
}

// ---------------------------------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------------------------------

fn model_field(c: &mut Criterion) {
    let small = SMALL_CHAT.as_bytes().to_vec();
    let large = large_chat();
    let mut group = c.benchmark_group("model_field");
    for (name, body) in [("small", &small), ("large", &large)] {
        assert_eq!(extract_model(body).unwrap(), "demo");
        assert_eq!(model_via_value(body).as_deref(), Some("demo"));
        let id = format!("{name}_{}B", body.len());
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("extract_model", &id),
            body.as_slice(),
            |b, body| b.iter(|| extract_model(black_box(body)).is_ok()),
        );
        group.bench_with_input(
            BenchmarkId::new("serde_value", &id),
            body.as_slice(),
            |b, body| b.iter(|| model_via_value(black_box(body))),
        );
    }
    group.finish();
}

fn sse(c: &mut Criterion) {
    let frames = vllm_chat_stream();
    let bytes: usize = frames.iter().map(Vec::len).sum();

    let mut o = SseObserver::default();
    let tokens: u64 = frames
        .iter()
        .map(|f| u64::from(o.observe(f).token_events))
        .sum();
    assert_eq!(tokens, STREAM_TOKENS as u64);
    assert_eq!(
        o.usage().and_then(|u| u.completion_tokens),
        Some(STREAM_TOKENS as u64)
    );
    let mut n = NaiveSse::default();
    for f in &frames {
        n.observe(f);
    }
    assert_eq!(n.token_events, STREAM_TOKENS as u64);
    assert_eq!(n.completion_tokens, Some(STREAM_TOKENS as u64));

    let id = format!("{}_events_{bytes}B", frames.len());
    let mut group = c.benchmark_group("sse");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_with_input(
        BenchmarkId::new("sse_observer", &id),
        &frames,
        |b, frames| {
            b.iter(|| {
                let mut o = SseObserver::default();
                let mut tokens = 0u64;
                for f in frames {
                    tokens += u64::from(o.observe(black_box(f)).token_events);
                }
                (tokens, o.usage())
            })
        },
    );
    group.bench_with_input(
        BenchmarkId::new("serde_value", &id),
        &frames,
        |b, frames| {
            b.iter(|| {
                let mut n = NaiveSse::default();
                for f in frames {
                    n.observe(black_box(f));
                }
                (n.token_events, n.completion_tokens)
            })
        },
    );
    group.finish();
}

fn json_usage(c: &mut Criterion) {
    let frames = completion_frames();
    let bytes: usize = frames.iter().map(Vec::len).sum();
    let mut s = JsonUsageScanner::default();
    for f in &frames {
        s.observe(f);
    }
    let expected = usage_via_value(&frames);
    assert!(expected.is_some());
    assert_eq!(s.usage.and_then(|u| u.completion_tokens), expected);

    let id = format!("3_frames_{bytes}B");
    let mut group = c.benchmark_group("json_usage");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_with_input(
        BenchmarkId::new("usage_scanner", &id),
        &frames,
        |b, frames| {
            b.iter(|| {
                let mut s = JsonUsageScanner::default();
                for f in frames {
                    s.observe(black_box(f));
                }
                s.usage
            })
        },
    );
    group.bench_with_input(
        BenchmarkId::new("serde_value", &id),
        &frames,
        |b, frames| b.iter(|| usage_via_value(black_box(frames))),
    );
    group.finish();
}

criterion_group!(benches, model_field, sse, json_usage);
criterion_main!(benches);
