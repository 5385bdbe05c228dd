//! Admission end to end: priority shedding under saturation, and token rate limits settled on
//! the usage the simulator reports; the real `infergate` and `infergate-sim` on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use http::StatusCode;
use infergate_e2e::*;

/// One endpoint with room for one request, no retries, and `admission`.
fn config(sim: &Sim, admission: &str) -> String {
    format!(
        "listeners:\n  data: {{ address: \"127.0.0.1:0\" }}\n  admin: {{ address: \"127.0.0.1:0\" }}\n\
         request_labels:\n  tenant: {{ header: x-tenant }}\n\
         admission: {admission}\n\
         backends:\n  - name: demo-backend\n    endpoints: [{{ url: \"{}\" }}]\n\
         \x20   limits: {{ max_in_flight_per_endpoint: 1 }}\n    retry: {{ max_attempts: 1 }}\n\
         models:\n  - {{ name: demo, backend: demo-backend }}\n",
        sim.url()
    )
}

fn chat(max_tokens: u32) -> String {
    format!(
        r#"{{"model":"demo","messages":[{{"role":"user","content":"hi"}}],"max_tokens":{max_tokens}}}"#
    )
}

/// The OpenAI error object of a 429, checked field by field, with its `Retry-After`.
fn error_429(r: &Reply, code: &str, kind: &str) -> (String, u64) {
    let body = String::from_utf8_lossy(&r.body()).into_owned();
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(r.headers["content-type"], "application/json");
    assert!(r.headers.contains_key("x-request-id"));
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "{retry}");
    let v = r.json();
    let e = v["error"].as_object().unwrap();
    assert_eq!(e.len(), 4, "{body}");
    assert_eq!(e["code"], code, "{body}");
    assert_eq!(e["type"], kind, "{body}");
    assert!(e["param"].is_null(), "{body}");
    (e["message"].as_str().unwrap().to_owned(), retry)
}

#[tokio::test]
async fn under_saturation_lower_classes_are_shed_first_and_higher_ones_served_first() {
    // 50 ms per token: the first request holds the one place for about 5 s.
    let sim = Sim::start(&["--ttft-ms", "20", "--itl-ms", "50"]).await;
    let admission = "{ priority: { header: x-priority, max_queued: 3, default: low, classes: [\
                     { name: high, queue: 2, max_wait: 30s }, { name: low, queue: 2, max_wait: 30s }] } }";
    let gw = Gateway::start(&config(&sim, admission)).await;
    let addr = gw.data;
    let send = |class: &'static str, max_tokens: u32| {
        tokio::spawn(async move {
            let h: Vec<(&str, &str)> = if class.is_empty() {
                vec![]
            } else {
                vec![("x-priority", class)]
            };
            post_with(addr, "/v1/chat/completions", &chat(max_tokens), &h).await
        })
    };
    let occupier = send("", 100);
    let url = sim.url();
    wait_until(
        "the first request holds the endpoint",
        Duration::from_secs(5),
        || async { gw.endpoint(&url).await["in_flight"] == 1 },
    )
    .await;
    // Each request is given time to reach its queue before the next one is sent.
    let step = Duration::from_millis(400);
    let low1 = send("low", 2);
    tokio::time::sleep(step).await;
    let low2 = send("low", 2);
    tokio::time::sleep(step).await;
    // The low queue holds 2: a third low request is shed at once.
    let low3 = send("low", 2).await.unwrap();
    let (msg, _) = error_429(&low3, "queue_full", "server_error");
    assert!(
        msg.contains("class `low`") && msg.contains("backend `demo-backend`"),
        "{msg}"
    );
    assert!(!low3.headers.contains_key("x-ratelimit-limit-tokens"));
    let high1 = send("high", 2);
    tokio::time::sleep(step).await;
    // Three wait, the most for the backend: a high request displaces the newest low one.
    let high2 = send("high", 2);
    let low2 = low2.await.unwrap();
    let (msg, _) = error_429(&low2, "queue_displaced", "server_error");
    assert!(msg.contains("higher priority class"), "{msg}");
    tokio::time::sleep(step).await;
    // The high queue holds 2 now.
    let high3 = send("high", 2).await.unwrap();
    error_429(&high3, "queue_full", "server_error");
    // As the place frees, the high requests go first, in their order, then the low one.
    let occupier = occupier.await.unwrap();
    let (high1, high2, low1) = (
        high1.await.unwrap(),
        high2.await.unwrap(),
        low1.await.unwrap(),
    );
    for (name, r) in [
        ("occupier", &occupier),
        ("high1", &high1),
        ("high2", &high2),
        ("low1", &low1),
    ] {
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{name}: {:?}",
            String::from_utf8_lossy(&r.body())
        );
        assert_eq!(r.headers["x-infergate-variant"], "demo-backend");
    }
    assert!(occupier.head_at <= high1.head_at);
    assert!(high1.head_at < high2.head_at, "high1 before high2");
    assert!(high2.head_at < low1.head_at, "high2 before low1");
    // The queued requests are counted on /metrics.
    let m = gw.metrics().await;
    assert!(m.contains("infergate_admission_queued_total{"), "{m}");
    // Nobody waited out its max_wait.
    assert!(low1.head_at.duration_since(low1.sent) < Duration::from_secs(25));
}

/// A prompt of one long word: the simulator counts 1 prompt token, the gateway estimates
/// bytes / 4 before the request.
fn long_prompt(max_tokens: u32, stream: bool) -> String {
    let word = "x".repeat(2000);
    let stream = if stream {
        r#","stream":true,"stream_options":{"include_usage":true}"#
    } else {
        ""
    };
    format!(r#"{{"model":"demo","prompt":"{word}","max_tokens":{max_tokens}{stream}}}"#)
}

fn num(r: &Reply, header: &str) -> u64 {
    r.headers
        .get(header)
        .unwrap_or_else(|| panic!("no {header}"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn token_limits_settle_on_the_usage_the_server_reports() {
    let sim = Sim::start(&["--ttft-ms", "5", "--itl-ms", "1"]).await;
    let admission =
        "{ rate_limits: { key: { label: tenant }, default: { tokens_per_minute: 1000 }, \
                     tenants: { acme: { requests_per_minute: 2 } } } }";
    let gw = Gateway::start(&config(&sim, admission)).await;
    let plain = long_prompt(10, false);
    let streamed = long_prompt(10, true);
    let est = |body: &str| (body.len() as u64).div_ceil(4) + 10;
    let (est_plain, est_streamed) = (est(&plain), est(&streamed));
    assert!(est_plain > 500 && est_streamed > 500);
    let t1 = [("x-tenant", "t1")];
    // A fresh tenant: the whole estimate is taken.
    let a = post_with(gw.data, "/v1/completions", &plain, &t1).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["usage"]["prompt_tokens"], 1);
    assert_eq!(a.json()["usage"]["completion_tokens"], 10);
    assert_eq!(num(&a, "x-ratelimit-limit-tokens"), 1000);
    assert_eq!(num(&a, "x-ratelimit-remaining-tokens"), 1000 - est_plain);
    assert!(a.headers.contains_key("x-ratelimit-reset-tokens"));
    assert!(!a.headers.contains_key("x-ratelimit-limit-requests"));
    // Settled on usage (11 tokens), the bucket holds 989 or more (it refills): a second
    // request fits, which two estimates would not.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let b = post_with(gw.data, "/v1/completions", &streamed, &t1).await;
    assert_eq!(
        b.status,
        StatusCode::OK,
        "{:?}",
        String::from_utf8_lossy(&b.body())
    );
    assert!(String::from_utf8_lossy(&b.body()).contains("data: [DONE]"));
    let left_b = num(&b, "x-ratelimit-remaining-tokens");
    assert!(
        (989 - est_streamed..=1000 - est_streamed).contains(&left_b),
        "{left_b} left after the second"
    );
    // The stream's usage chunk settles it too.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let c = post_with(gw.data, "/v1/completions", &plain, &t1).await;
    assert_eq!(c.status, StatusCode::OK);
    let left_c = num(&c, "x-ratelimit-remaining-tokens");
    assert!(
        left_c >= left_b + est_streamed - 11 - est_plain,
        "{left_c} left after the third"
    );
    assert!(left_c < est_plain, "{left_c}");
    // Each request so far used 11 tokens. One that uses 900 (as the server reports) leaves
    // too little for the next estimate.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let big = post_with(
        gw.data,
        "/v1/completions",
        r#"{"model":"demo","prompt":"hi","max_tokens":900}"#,
        &t1,
    )
    .await;
    assert_eq!(big.status, StatusCode::OK);
    assert_eq!(big.json()["usage"]["completion_tokens"], 900);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let d = post_with(gw.data, "/v1/completions", &plain, &t1).await;
    let (msg, retry) = error_429(&d, "rate_limit_exceeded", "tokens");
    assert!(
        msg.contains("tenant `t1`")
            && msg.contains("Limit 1000")
            && msg.contains(&format!("Requested {est_plain}")),
        "{msg}"
    );
    // The time for the missing tokens at 1000 per minute, rounded up.
    assert!((1..=35).contains(&retry), "{retry}");
    assert_eq!(num(&d, "x-ratelimit-limit-tokens"), 1000);
    // About 1000 - 900 - 4 * 11, plus what refilled in the last seconds.
    assert!(
        num(&d, "x-ratelimit-remaining-tokens") < 200,
        "{}",
        num(&d, "x-ratelimit-remaining-tokens")
    );
    assert!(d.headers.contains_key("x-ratelimit-reset-tokens"));
    // Another tenant has its own bucket.
    let other = post_with(gw.data, "/v1/completions", &plain, &[("x-tenant", "t2")]).await;
    assert_eq!(other.status, StatusCode::OK);
    // A tenant with a request limit only: two per minute, then 429 on requests.
    let acme = [("x-tenant", "acme")];
    for left in [1, 0] {
        let r = post_with(gw.data, "/v1/chat/completions", &chat(2), &acme).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(num(&r, "x-ratelimit-limit-requests"), 2);
        assert_eq!(num(&r, "x-ratelimit-remaining-requests"), left);
        assert!(!r.headers.contains_key("x-ratelimit-limit-tokens"));
    }
    let r = post_with(gw.data, "/v1/chat/completions", &chat(2), &acme).await;
    let (msg, retry) = error_429(&r, "rate_limit_exceeded", "requests");
    assert!(
        msg.contains("requests per min (RPM)") && msg.contains("Limit 2"),
        "{msg}"
    );
    // One request comes back every 30 s.
    assert!((20..=30).contains(&retry), "{retry}");
    assert_eq!(num(&r, "x-ratelimit-remaining-requests"), 0);
    assert!(r.headers["x-ratelimit-reset-requests"]
        .to_str()
        .unwrap()
        .ends_with('s'));
    // The refusals are counted on /metrics: one on tokens, one on requests.
    let m = gw.metrics().await;
    for limit in ["tokens", "requests"] {
        let line = format!("infergate_rate_limited_total{{limit=\"{limit}\"}} 1");
        assert!(m.contains(&line), "no {line:?} in:\n{m}");
    }
}
