//! Access logs and OpenTelemetry traces end to end: the real gateway, a simulator, an upstream
//! that records the headers it gets, and an OTLP/HTTP receiver (tests/python/otlp_receiver.py,
//! decoding with the official `opentelemetry-proto` definitions). Lines and spans are checked
//! field by field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use infergate_e2e::*;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::Command;

const PARENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";
const STREAM: &str = r#"{"model":"demo","messages":[{"role":"user","content":"hello there"}],"max_tokens":8,"stream":true,"stream_options":{"include_usage":true}}"#;
const PLAIN: &str = r#"{"model":"demo","prompt":"one two three","max_tokens":4}"#;
const ECHO: &str = r#"{"model":"echo","messages":[{"role":"user","content":"hi"}]}"#;
const ECHO_ANSWER: &str = r#"{"id":"x","object":"chat.completion","model":"echo","choices":[{"index":0,"message":{"role":"assistant","content":"ok ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;

/// The OTLP receiver: a Python process writing each span it decodes as a JSON line.
async fn otlp_receiver(out: &Path) -> (Proc, SocketAddr) {
    let script = repo_root().join("tests/python/otlp_receiver.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(out).stdin(Stdio::piped());
    let (proc, addrs) = Proc::spawn(
        cmd,
        &[|l: &str| {
            l.strip_prefix("otlp-receiver listening on http://")?
                .trim()
                .parse()
                .ok()
        }],
    )
    .await;
    (proc, addrs[0])
}

/// An upstream that answers every request with one chat completion and keeps its headers.
async fn recording_upstream() -> (SocketAddr, Arc<Mutex<Vec<HeaderMap>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let addr = upstream(seen.clone(), Arc::new(AtomicBool::new(false))).await;
    (addr, seen)
}

/// An upstream that keeps the headers it gets in `seen` and answers 503 while `fail` is set
/// (clearing it), else one chat completion.
async fn upstream(seen: Arc<Mutex<Vec<HeaderMap>>>, fail: Arc<AtomicBool>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let keep = seen.clone();
            let fail = fail.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    keep.lock().unwrap().push(req.headers().clone());
                    let failing = fail.swap(false, Ordering::SeqCst);
                    async move {
                        let mut r =
                            Response::new(Full::new(Bytes::from_static(ECHO_ANSWER.as_bytes())));
                        if failing {
                            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                        }
                        r.headers_mut()
                            .insert("content-type", "application/json".parse().unwrap());
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

fn config(sim: &str, echo: &str, log: &Path, otlp: &str) -> String {
    format!(
        r#"listeners:
  data: {{ address: "127.0.0.1:0" }}
  admin: {{ address: "127.0.0.1:0" }}
access_log: {{ enabled: true, path: "{log}", queue: 1024 }}
tracing:
  otlp: {{ endpoint: "{otlp}", timeout: 5s }}
  sample: 1.0
  service_name: gw-e2e
  batch_delay: 50ms
backends:
  - name: sim
    endpoints: [{{ url: "{sim}" }}]
  - name: capture
    endpoints: [{{ url: "{echo}" }}]
models:
  - {{ name: demo, backend: sim }}
  - {{ name: echo, backend: capture }}
"#,
        log = log.display()
    )
}

fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

async fn wait_lines(path: &Path, n: usize) -> Vec<Value> {
    wait_for(
        &format!("{} lines in {}", n, path.display()),
        Duration::from_secs(15),
        || async {
            let v = json_lines(path);
            if v.len() >= n {
                Ok(v)
            } else {
                Err(format!("{v:?}"))
            }
        },
    )
    .await
}

fn by<'a>(items: &'a [Value], key: &str, value: &str) -> &'a Value {
    items
        .iter()
        .find(|v| v[key] == value || v["attributes"][key] == value)
        .unwrap_or_else(|| panic!("no {key}={value} in {items:#?}"))
}

fn event<'a>(span: &'a Value, name: &str) -> &'a Value {
    span["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no event {name} in {span:#}"))
}

#[tokio::test]
async fn access_log_lines_and_spans_are_complete() {
    let spans_file = temp_path("spans.jsonl");
    let log_file = temp_path("access.jsonl");
    let (_receiver, otlp) = otlp_receiver(&spans_file).await;
    let sim = Sim::start(&["--ttft-ms", "20", "--itl-ms", "5"]).await;
    let (echo, seen) = recording_upstream().await;
    let otlp_url = format!("http://{otlp}/v1/traces");
    let echo_url = format!("http://{echo}");
    let gw = Gateway::start(&config(&sim.url(), &echo_url, &log_file, &otlp_url)).await;

    let stream = post_with(
        gw.data,
        "/v1/chat/completions",
        STREAM,
        &[("x-request-id", "req-stream")],
    )
    .await;
    assert_eq!(stream.status, StatusCode::OK);
    let plain = post_with(
        gw.data,
        "/v1/completions",
        PLAIN,
        &[("x-request-id", "req-plain")],
    )
    .await;
    assert_eq!(plain.status, StatusCode::OK);
    let traceparent = format!("00-{PARENT_TRACE}-{PARENT_SPAN}-01");
    let parented = post_with(
        gw.data,
        "/v1/chat/completions",
        ECHO,
        &[
            ("x-request-id", "req-parent"),
            ("traceparent", &traceparent),
            ("tracestate", "vendor=x"),
        ],
    )
    .await;
    assert_eq!(parented.status, StatusCode::OK);
    let missing = post_with(
        gw.data,
        "/v1/chat/completions",
        r#"{"model":"nope","messages":[]}"#,
        &[("x-request-id", "req-404")],
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // --- access log ---
    let lines = wait_lines(&log_file, 4).await;
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let s = by(&lines, "request_id", "req-stream");
    assert_eq!(s["method"], "POST");
    assert_eq!(s["path"], "/v1/chat/completions");
    assert_eq!(s["model"], "demo");
    assert_eq!(s["backend"], "sim");
    assert_eq!(
        s["variant"],
        stream.headers["x-infergate-variant"].to_str().unwrap()
    );
    assert_eq!(s["rule_index"], 0);
    assert!(s["rule"].is_string(), "{s}");
    assert_eq!(s["endpoint"], sim.url());
    assert_eq!(s["status"], 200);
    assert_eq!(s["outcome"], "success");
    assert!(s["error"].is_null());
    assert_eq!(s["completion_tokens"], 8);
    assert!(s["prompt_tokens"].as_u64().unwrap() >= 1, "{s}");
    let ttft = s["ttft_s"].as_f64().unwrap();
    let duration = s["duration_s"].as_f64().unwrap();
    assert!(ttft >= 0.015 && ttft < duration, "{s}");
    let tpot = s["tpot_s"].as_f64().unwrap();
    assert!(tpot > 0.0 && tpot < 1.0, "{s}");
    assert_eq!(s["attempts"], 1);
    assert_eq!(s["bytes_in"], STREAM.len());
    assert_eq!(s["bytes_out"], stream.body().len());
    assert_eq!(s["trace_id"].as_str().unwrap().len(), 32);
    assert_ne!(s["trace_id"], PARENT_TRACE);
    assert!(s["time"].as_str().unwrap().ends_with('Z'), "{s}");
    assert!(
        s["client"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{s}"
    );

    let p = by(&lines, "request_id", "req-plain");
    assert_eq!(p["path"], "/v1/completions");
    assert_eq!(p["completion_tokens"], 4);
    assert_eq!(p["prompt_tokens"], 3);
    assert!(
        p["ttft_s"].is_null(),
        "a JSON answer has no token events: {p}"
    );
    assert_eq!(p["bytes_out"], plain.body().len());

    let e = by(&lines, "request_id", "req-parent");
    assert_eq!(e["model"], "echo");
    assert_eq!(e["endpoint"], echo_url);
    assert_eq!(e["prompt_tokens"], 3);
    assert_eq!(e["completion_tokens"], 2);
    assert_eq!(e["trace_id"], PARENT_TRACE);

    let m = by(&lines, "request_id", "req-404");
    assert_eq!(m["status"], 404);
    assert_eq!(m["outcome"], "unknown_model");
    assert!(m["model"].is_null());
    assert_eq!(m["attempts"], 0);
    assert!(m["error"].as_str().unwrap().contains("nope"), "{m}");

    // --- the upstream got a child of the client's span ---
    let headers = seen.lock().unwrap().clone();
    assert_eq!(headers.len(), 1);
    let up = headers[0]["traceparent"].to_str().unwrap().to_owned();
    assert_eq!(headers[0]["tracestate"], "vendor=x");
    let parts: Vec<&str> = up.split('-').collect();
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1], PARENT_TRACE);
    assert_ne!(parts[2], PARENT_SPAN);
    assert_eq!(parts[3], "01");

    // --- spans: 4 server spans, 3 attempts ---
    let spans = wait_lines(&spans_file, 7).await;
    assert_eq!(spans.len(), 7, "{spans:#?}");
    for sp in &spans {
        assert_eq!(sp["resource"]["service.name"], "gw-e2e");
        assert_eq!(sp["scope"], "infergate");
        assert!(sp["end"].as_u64().unwrap() >= sp["start"].as_u64().unwrap());
    }
    let server = by(&spans, "infergate.request_id", "req-parent");
    assert_eq!(server["kind"], "SPAN_KIND_SERVER");
    assert_eq!(server["trace_id"], PARENT_TRACE);
    assert_eq!(server["parent_span_id"], PARENT_SPAN);
    assert_eq!(server["trace_state"], "vendor=x");
    assert_eq!(server["name"], "chat echo");
    let a = &server["attributes"];
    assert_eq!(a["gen_ai.operation.name"], "chat");
    assert_eq!(a["gen_ai.request.model"], "echo");
    assert_eq!(a["gen_ai.usage.input_tokens"], 3);
    assert_eq!(a["gen_ai.usage.output_tokens"], 2);
    assert_eq!(a["http.request.method"], "POST");
    assert_eq!(a["url.path"], "/v1/chat/completions");
    assert_eq!(a["http.response.status_code"], 200);
    assert_eq!(a["infergate.backend"], "capture");
    assert_eq!(a["infergate.endpoint"], echo_url);
    assert_eq!(a["infergate.attempts"], 1);
    assert_eq!(server["status"]["code"], "STATUS_CODE_UNSET");
    let attempt = spans
        .iter()
        .find(|s| s["parent_span_id"] == server["span_id"])
        .unwrap_or_else(|| panic!("no attempt span under {server:#}"));
    assert_eq!(attempt["kind"], "SPAN_KIND_CLIENT");
    assert_eq!(attempt["trace_id"], PARENT_TRACE);
    assert_eq!(
        attempt["span_id"], parts[2],
        "the upstream's parent is the attempt span"
    );
    assert_eq!(attempt["attributes"]["http.response.status_code"], 200);
    assert_eq!(attempt["attributes"]["infergate.attempt"], 1);
    assert_eq!(
        attempt["attributes"]["url.full"],
        format!("{echo_url}/v1/chat/completions")
    );

    let st = by(&spans, "infergate.request_id", "req-stream");
    assert_eq!(st["trace_id"], s["trace_id"]);
    assert_eq!(st["parent_span_id"], "");
    assert_eq!(st["name"], "chat demo");
    assert_eq!(st["attributes"]["gen_ai.usage.output_tokens"], 8);
    let routing = event(st, "routing");
    assert_eq!(routing["attributes"]["infergate.rule_index"], 0);
    assert_eq!(routing["attributes"]["infergate.variant"], s["variant"]);
    let first = event(st, "first_token");
    let end = event(st, "end_of_stream");
    let (t0, t1, t2) = (
        st["start"].as_u64().unwrap(),
        first["time"].as_u64().unwrap(),
        end["time"].as_u64().unwrap(),
    );
    assert!(
        t0 < t1 && t1 <= t2 && t2 <= st["end"].as_u64().unwrap(),
        "{st:#}"
    );
    let ttft_ns = (ttft * 1e9) as u64;
    assert!(
        (t1 - t0).abs_diff(ttft_ns) < 2_000_000,
        "first_token event at the TTFT: {st:#}"
    );
    assert_eq!(end["attributes"]["infergate.outcome"], "success");

    let nf = by(&spans, "infergate.request_id", "req-404");
    assert_eq!(nf["name"], "POST /v1/chat/completions");
    assert_eq!(nf["attributes"]["http.response.status_code"], 404);
    assert_eq!(nf["attributes"]["error.type"], "unknown_model");
    assert!(nf["attributes"]["gen_ai.request.model"].is_null());
    assert_eq!(
        nf["status"]["code"], "STATUS_CODE_UNSET",
        "4xx is not a server error"
    );
    assert!(spans.iter().all(|s| s["parent_span_id"] != nf["span_id"]));

    // --- metrics ---
    gw.wait_metric(
        "infergate_trace_spans_exported_total",
        &[],
        7.0,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        gw.metric("infergate_access_log_dropped_total", &[]).await,
        0.0
    );
    assert_eq!(
        gw.metric("infergate_trace_spans_dropped_total", &[]).await,
        0.0
    );
    let overhead = gw
        .metric("infergate_gateway_overhead_seconds_count", &[])
        .await;
    assert_eq!(overhead, 3.0, "one per request sent to an endpoint");
    let sum = gw
        .metric("infergate_gateway_overhead_seconds_sum", &[])
        .await;
    assert!(sum > 0.0 && sum < 0.5, "overhead sum {sum}");
}

#[tokio::test]
async fn a_receiver_that_is_down_costs_spans_not_requests() {
    let sim = Sim::start(&["--ttft-ms", "5", "--itl-ms", "1"]).await;
    let log_file = temp_path("access-down.jsonl");
    let otlp = format!("{}/v1/traces", closed_port_url());
    let gw = Gateway::start(&config(&sim.url(), &sim.url(), &log_file, &otlp)).await;
    for _ in 0..3 {
        let r = post(gw.data, "/v1/completions", PLAIN).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    gw.wait_metric(
        "infergate_trace_spans_dropped_total",
        &[("reason", "export_failed")],
        6.0,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        gw.metric("infergate_trace_spans_exported_total", &[]).await,
        0.0
    );
    assert_eq!(wait_lines(&log_file, 3).await.len(), 3);
}

#[tokio::test]
async fn a_retried_request_has_a_span_per_attempt() {
    let spans_file = temp_path("spans-retry.jsonl");
    let log_file = temp_path("access-retry.jsonl");
    let (_receiver, otlp) = otlp_receiver(&spans_file).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    // Whichever endpoint is tried first answers 503; the retry goes to the other.
    let fail = Arc::new(AtomicBool::new(true));
    let a = format!("http://{}", upstream(seen.clone(), fail.clone()).await);
    let b = format!("http://{}", upstream(seen.clone(), fail).await);
    let cfg = format!(
        r#"listeners:
  data: {{ address: "127.0.0.1:0" }}
  admin: {{ address: "127.0.0.1:0" }}
access_log: {{ enabled: true, path: "{log}" }}
tracing: {{ otlp: {{ endpoint: "http://{otlp}/v1/traces" }}, batch_delay: 50ms }}
backends:
  - name: flaky
    endpoints: [{{ url: "{a}" }}, {{ url: "{b}" }}]
models:
  - {{ name: echo, backend: flaky }}
"#,
        log = log_file.display()
    );
    let gw = Gateway::start(&cfg).await;
    let r = post_with(
        gw.data,
        "/v1/chat/completions",
        ECHO,
        &[("x-request-id", "req-retry")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    let line = &wait_lines(&log_file, 1).await[0];
    assert_eq!(line["attempts"], 2);
    assert_eq!(line["status"], 200);
    assert_eq!(line["outcome"], "success");
    let headers = seen.lock().unwrap().clone();
    assert_eq!(headers.len(), 2);
    let (first_url, second_url) = if line["endpoint"] == a {
        (&b, &a)
    } else {
        (&a, &b)
    };
    assert_eq!(line["endpoint"], *second_url);

    let spans = wait_lines(&spans_file, 3).await;
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let server = by(&spans, "infergate.request_id", "req-retry");
    assert_eq!(server["attributes"]["infergate.attempts"], 2);
    let attempt = |n: u64| {
        spans
            .iter()
            .find(|s| s["attributes"]["infergate.attempt"] == n)
            .unwrap_or_else(|| panic!("no attempt {n} in {spans:#?}"))
    };
    let (one, two) = (attempt(1), attempt(2));
    for (sp, h) in [(one, &headers[0]), (two, &headers[1])] {
        assert_eq!(sp["parent_span_id"], server["span_id"]);
        assert_eq!(sp["trace_id"], server["trace_id"]);
        let tp = h["traceparent"].to_str().unwrap();
        let trace = server["trace_id"].as_str().unwrap();
        assert_eq!(
            tp,
            format!("00-{trace}-{}-01", sp["span_id"].as_str().unwrap())
        );
    }
    assert_eq!(one["attributes"]["http.response.status_code"], 503);
    assert!(one["attributes"]["error.type"].is_string(), "{one:#}");
    assert_eq!(one["status"]["code"], "STATUS_CODE_ERROR");
    let one_url = one["attributes"]["url.full"].as_str().unwrap();
    assert!(one_url.starts_with(first_url.as_str()), "{one:#}");
    assert_eq!(two["attributes"]["http.response.status_code"], 200);
    assert!(two["attributes"]["error.type"].is_null());
    assert_eq!(two["status"]["code"], "STATUS_CODE_UNSET");
    assert!(one["end"].as_u64().unwrap() <= two["start"].as_u64().unwrap());
}
