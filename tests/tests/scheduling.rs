//! Endpoint choice on engine state, end to end: the real `infergate` in front of small fake
//! engines on loopback that serve a chat completion and a vLLM metrics page whose values the
//! test sets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use infergate_e2e::*;
use tokio::net::TcpListener;

/// A fake engine: `POST` answers a chat completion after `delay_ms`; `GET /metrics` serves
/// `queue` and `kv` (thousandths) in vLLM's names, or 500 while `broken`.
#[derive(Default)]
struct Engine {
    queue: AtomicU32,
    kv_permille: AtomicU32,
    broken: AtomicBool,
    delay_ms: AtomicU32,
    served: AtomicU32,
}

async fn serve(
    e: Arc<Engine>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == "/metrics" {
        if e.broken.load(Ordering::Relaxed) {
            let mut r = Response::new(Full::new(Bytes::from_static(b"broken")));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            return Ok(r);
        }
        let page = format!(
            "# TYPE vllm:num_requests_waiting gauge\n\
             vllm:num_requests_waiting{{model_name=\"demo\"}} {}\n\
             vllm:num_requests_running{{model_name=\"demo\"}} 1\n\
             vllm:kv_cache_usage_perc{{model_name=\"demo\"}} {}\n",
            e.queue.load(Ordering::Relaxed),
            f64::from(e.kv_permille.load(Ordering::Relaxed)) / 1000.0
        );
        return Ok(Response::new(Full::new(Bytes::from(page))));
    }
    let delay = e.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(u64::from(delay))).await;
    }
    e.served.fetch_add(1, Ordering::Relaxed);
    let body = r#"{"id":"c","object":"chat.completion","model":"demo","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#;
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    Ok(r)
}

async fn start_engine() -> (Arc<Engine>, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = l.local_addr().unwrap();
    let e = Arc::new(Engine::default());
    let served = e.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let e = served.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |r| serve(e.clone(), r));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (e, format!("http://{addr}"))
}

fn chat(system: &str, question: &str) -> String {
    format!(
        r#"{{"model":"demo","messages":[{{"role":"system","content":"{system}"}},{{"role":"user","content":"{question}"}}],"max_tokens":1}}"#
    )
}

/// Sends one chat request; returns the reason header.
async fn ask(gw: &Gateway, body: &str) -> String {
    let r = post(gw.data, "/v1/chat/completions", body).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body());
    r.headers["x-infergate-endpoint-reason"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The engine state of endpoint `url` in `/admin/endpoints` (null while it is not there).
async fn engine(gw: &Gateway, url: &str) -> serde_json::Value {
    let v = get(gw.admin, "/admin/endpoints").await.json();
    v["backends"][0]["endpoints"]
        .as_array()
        .and_then(|eps| eps.iter().find(|e| e["url"] == url))
        .map(|e| e["engine"].clone())
        .unwrap_or_default()
}

/// Waits until the gateway's view of `url`'s engine queue is `queue`.
async fn wait_queue(gw: &Gateway, url: &str, queue: u64) {
    wait_until(
        &format!("{url} queue {queue}"),
        Duration::from_secs(10),
        || async { engine(gw, url).await["queue"] == queue },
    )
    .await;
}

const MODEL_AWARE: &str =
    "    balancer: { policy: model_aware, reason_header: true, stale_after: 300ms, \
     engine_state: { interval: 20ms, timeout: 200ms } }";

#[tokio::test]
async fn requests_move_off_an_endpoint_whose_queue_grows() {
    let (a, a_url) = start_engine().await;
    let (b, b_url) = start_engine().await;
    let gw = Gateway::start(&Gateway::config(
        &[a_url.clone(), b_url.clone()],
        MODEL_AWARE,
    ))
    .await;
    wait_queue(&gw, &a_url, 0).await;
    wait_queue(&gw, &b_url, 0).await;
    for k in 0..20 {
        let why = ask(&gw, &chat("s", &format!("q{k}"))).await;
        assert!(why.starts_with("model_aware score="), "{why}");
    }
    assert!(a.served.load(Ordering::Relaxed) > 0 && b.served.load(Ordering::Relaxed) > 0);
    // A's queue grows past the threshold: everything goes to B.
    a.queue.store(20, Ordering::Relaxed);
    wait_queue(&gw, &a_url, 20).await;
    let (a0, b0) = (
        a.served.load(Ordering::Relaxed),
        b.served.load(Ordering::Relaxed),
    );
    for k in 0..20 {
        let why = ask(&gw, &chat("s", &format!("r{k}"))).await;
        assert!(why.contains("queue=0"), "{why}");
    }
    assert_eq!(a.served.load(Ordering::Relaxed), a0);
    assert_eq!(b.served.load(Ordering::Relaxed), b0 + 20);
    let ep = gw.endpoint(&a_url).await;
    assert!(ep["engine"]["age_ms"].as_u64().unwrap() < 1000, "{ep}");
}

#[tokio::test]
async fn a_stale_scrape_falls_back_to_in_flight() {
    let (a, a_url) = start_engine().await;
    let (b, b_url) = start_engine().await;
    let gw = Gateway::start(&Gateway::config(
        &[a_url.clone(), b_url.clone()],
        MODEL_AWARE,
    ))
    .await;
    a.queue.store(20, Ordering::Relaxed);
    wait_queue(&gw, &a_url, 20).await;
    wait_queue(&gw, &b_url, 0).await;
    // Both metrics pages fail: the old values stay, their age grows past stale_after.
    a.broken.store(true, Ordering::Relaxed);
    b.broken.store(true, Ordering::Relaxed);
    wait_until("stale engine state", Duration::from_secs(10), || async {
        let ep = gw.endpoint(&a_url).await;
        ep["engine"]["age_ms"].as_u64().unwrap_or(0) > 400
            && ep["engine"]["failed_scrapes"].as_u64().unwrap_or(0) > 0
    })
    .await;
    let ep = gw.endpoint(&a_url).await;
    assert_eq!(ep["engine"]["queue"], 20, "{ep}");
    assert_eq!(ep["state"], "healthy", "a failed scrape never ejects: {ep}");
    let a0 = a.served.load(Ordering::Relaxed);
    for k in 0..30 {
        let why = ask(&gw, &chat("s", &format!("q{k}"))).await;
        assert!(why.starts_with("stale: in-flight"), "{why}");
    }
    // In-flight alone (0 on both between sequential requests) spreads them over A again.
    assert!(a.served.load(Ordering::Relaxed) > a0);
    assert!(b.served.load(Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn a_shared_prefix_sticks_to_one_endpoint_until_its_load_bound_spills_it() {
    let mut engines = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..3 {
        let (e, url) = start_engine().await;
        engines.push(e);
        urls.push(url);
    }
    let extra = "    balancer: { reason_header: true, \
                 prefix_affinity: { block_bytes: 64, blocks: 4, load_factor: 2.0 } }";
    let gw = Gateway::start(&Gateway::config(&urls, extra)).await;
    let system = "You are a careful assistant who answers in one word. ".repeat(8);
    // One at a time: every request with the shared prefix goes to the same endpoint.
    for k in 0..12 {
        let why = ask(&gw, &chat(&system, &format!("question {k}"))).await;
        assert_eq!(why, "prefix-affinity hit");
    }
    let served: Vec<u32> = engines
        .iter()
        .map(|e| e.served.load(Ordering::Relaxed))
        .collect();
    assert_eq!(served.iter().filter(|&&n| n == 12).count(), 1, "{served:?}");
    // Many at once: the home takes its bound, the rest spill to the next endpoints.
    for e in &engines {
        e.delay_ms.store(400, Ordering::Relaxed);
    }
    let mut tasks = Vec::new();
    for k in 0..9 {
        let (data, body) = (gw.data, chat(&system, &format!("burst {k}")));
        tasks.push(tokio::spawn(async move {
            let r = post(data, "/v1/chat/completions", &body).await;
            assert_eq!(r.status, StatusCode::OK);
            r.headers["x-infergate-endpoint-reason"]
                .to_str()
                .unwrap()
                .to_owned()
        }));
        // Each request in flight before the next is placed.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut reasons = Vec::new();
    for t in tasks {
        reasons.push(t.await.unwrap());
    }
    let hits = reasons
        .iter()
        .filter(|r| *r == "prefix-affinity hit")
        .count();
    let spills = reasons
        .iter()
        .filter(|r| r.starts_with("prefix-affinity spill"))
        .count();
    assert!(
        hits >= 2 && spills >= 2 && hits + spills == 9,
        "{reasons:?}"
    );
    let after: Vec<u32> = engines
        .iter()
        .map(|e| e.served.load(Ordering::Relaxed))
        .collect();
    let grew = after.iter().zip(&served).filter(|(a, b)| a > b).count();
    assert!(grew >= 2, "{served:?} -> {after:?}");
}

#[tokio::test]
async fn engine_state_follows_the_endpoints_of_a_reload() {
    let (a, a_url) = start_engine().await;
    let (c, c_url) = start_engine().await;
    a.queue.store(2, Ordering::Relaxed);
    c.queue.store(5, Ordering::Relaxed);
    let scraped = "    balancer: { engine_state: { interval: 20ms } }";
    let gw = Gateway::start(&Gateway::config(std::slice::from_ref(&a_url), scraped)).await;
    wait_queue(&gw, &a_url, 2).await;
    // p2c with engine_state: the state is shown, the choice stays p2c.
    let r = post(gw.data, "/v1/chat/completions", &chat("s", "q")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get("x-infergate-endpoint-reason").is_none());
    gw.write_config(&Gateway::config(&[a_url.clone(), c_url.clone()], scraped));
    wait_queue(&gw, &c_url, 5).await;
    // Without engine_state, scraping stops: the age grows.
    gw.write_config(&Gateway::config(&[a_url.clone(), c_url.clone()], ""));
    wait_until("scraping stopped", Duration::from_secs(10), || async {
        engine(&gw, &c_url).await["age_ms"].as_u64().unwrap_or(0) > 500
    })
    .await;
}
