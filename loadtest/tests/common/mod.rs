//! Helpers shared by the simulator's timing, capacity, metrics and fault tests.

// Test helpers outside #[test] fns are test code too; not every test file uses every helper.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infergate_loadtest::sim::{SimConfig, Simulator};
use serde_json::{json, Value};

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub const MS: Duration = Duration::from_millis(1);

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An HTTP/2 (h2c, prior knowledge) client.
pub fn h2c_client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

pub async fn start(cfg: SimConfig) -> Simulator {
    Simulator::start("127.0.0.1:0".parse().unwrap(), cfg)
        .await
        .unwrap()
}

/// A chat request body with `max_tokens` and a 2-word prompt.
pub fn chat(max_tokens: u32, stream: bool) -> Value {
    json!({
        "model": "demo",
        "messages": [{"role": "user", "content": "hello world"}],
        "max_tokens": max_tokens,
        "stream": stream,
    })
}

/// A chat request body whose prompt is `words` words long.
pub fn chat_with_prompt(words: usize, max_tokens: u32, stream: bool) -> Value {
    let prompt = vec!["word"; words].join(" ");
    json!({
        "model": "demo",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "stream": stream,
    })
}

/// POSTs `body` to `path`, with extra `headers`.
pub async fn post(
    client: &HttpClient,
    addr: SocketAddr,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{addr}{path}"))
        .header(header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    client
        .request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
        .await
}

/// POSTs a chat request, which must get a response head.
pub async fn post_chat(
    client: &HttpClient,
    addr: SocketAddr,
    body: &Value,
    headers: &[(&str, &str)],
) -> Response<Incoming> {
    post(client, addr, "/v1/chat/completions", body, headers)
        .await
        .unwrap()
}

pub async fn get(client: &HttpClient, addr: SocketAddr, path: &str) -> Response<Incoming> {
    let req = Request::builder()
        .uri(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    client.request(req).await.unwrap()
}

/// Status and parsed JSON body.
pub async fn json_of(resp: Response<Incoming>) -> (StatusCode, Value) {
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|err| panic!("{status}: not JSON ({err}): {bytes:?}"));
    (status, value)
}

/// Checks the OpenAI/vLLM error body shape and returns its `type`.
pub async fn error_of(resp: Response<Incoming>, status: u16) -> String {
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    let (got, v) = json_of(resp).await;
    assert_eq!(got.as_u16(), status, "{v}");
    let err = &v["error"];
    assert_eq!(err["code"], status, "{v}");
    assert_eq!(err["param"], Value::Null, "{v}");
    assert!(!err["message"].as_str().unwrap().is_empty(), "{v}");
    err["type"].as_str().unwrap().to_owned()
}

/// The next data frame of a body: `Ok(Some)` data, `Ok(None)` a clean end, `Err` a broken
/// body.
pub async fn next_frame(body: &mut Incoming) -> Result<Option<Bytes>, hyper::Error> {
    loop {
        match body.frame().await {
            None => return Ok(None),
            Some(Err(err)) => return Err(err),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// Time from `sent` to the first body frame.
pub async fn first_frame_after(resp: Response<Incoming>, sent: Instant) -> Duration {
    let mut body = resp.into_body();
    let frame = next_frame(&mut body).await.unwrap();
    assert!(frame.is_some(), "the stream ended without a frame");
    let at = sent.elapsed();
    // Drain the rest so that the request completes.
    while next_frame(&mut body).await.unwrap().is_some() {}
    at
}

/// Reads a whole body as text.
pub async fn text_of(resp: Response<Incoming>) -> String {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// `GET /metrics` as text.
pub async fn scrape(addr: SocketAddr) -> String {
    let resp = get(&client(), addr, "/metrics").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    text_of(resp).await
}

/// The value of the sample named `name` whose labels contain every one of `labels` (such
/// as `le="0.25"`); panics when there is none.
pub fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest),
                None => (series, ""),
            };
            (metric == name && labels.iter().all(|l| rest.contains(l)))
                .then(|| value.parse::<f64>().unwrap())
        })
        .unwrap_or_else(|| panic!("no sample {name} {labels:?} in\n{text}"))
}

/// Waits (up to 5 s) until `cond` holds on the metrics text.
pub async fn wait_for_metrics(addr: SocketAddr, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = scrape(addr).await;
        if cond(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{text}"
        );
        tokio::time::sleep(10 * MS).await;
    }
}

/// Waits (up to 5 s) until `cond` holds.
pub async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(5 * MS).await;
    }
}

/// Waits (up to 5 s) until `GET /health` answers 200, and returns how long that took.
pub async fn wait_for_health(addr: SocketAddr) -> Duration {
    let client = client();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(5);
    loop {
        let resp = get(&client, addr, "/health").await;
        let status = resp.status();
        text_of(resp).await;
        if status == StatusCode::OK {
            return start.elapsed();
        }
        assert!(Instant::now() < deadline, "/health still answers {status}");
        tokio::time::sleep(10 * MS).await;
    }
}

/// Mean and standard deviation of durations, in milliseconds.
pub fn mean_sd_ms(values: &[Duration]) -> (f64, f64) {
    let n = values.len() as f64;
    let ms: Vec<f64> = values.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    let mean = ms.iter().sum::<f64>() / n;
    let var = ms.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}
