//! Operating the gateway: hot reload, the admin API and its token, limits and graceful drain.
//! Real processes on loopback. Retries and ejection are tested in process on a paused clock:
//! gateway/tests/component.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use infergate_e2e::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STREAM: &str =
    r#"{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"stream":true}"#;

fn config_with(endpoints: &[String], top: &str, backend_extra: &str) -> String {
    let cfg = Gateway::config(endpoints, backend_extra);
    format!("{top}\n{cfg}")
}

/// Polls `GET /admin/config` until `done` holds (at most 10 s) and returns that state.
async fn wait_config(
    gw: &Gateway,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_for(what, Duration::from_secs(10), || async {
        let st = get(gw.admin, "/admin/config").await.json();
        if done(&st) {
            Ok(st)
        } else {
            Err(st.to_string())
        }
    })
    .await
}

#[tokio::test]
async fn reload_by_admin_file_and_sighup_keeps_serving_on_bad_config() {
    let a = Sim::start(&[
        "--ttft-ms",
        "1",
        "--itl-ms",
        "1",
        "--model",
        "demo",
        "--model",
        "other",
    ])
    .await;
    let gw = Gateway::start(&Gateway::config(&[a.url()], "")).await;
    let st = get(gw.admin, "/admin/config").await.json();
    assert_eq!(st["version"], 1);
    assert!(st["last_error"].is_null());
    let hash1 = st["hash"].as_str().unwrap().to_owned();

    // The file watcher sees every write below within a second, so each step waits for it before
    // asking for an admin reload of the same file: the versions and counts are then exact.

    // An invalid config: the old one keeps serving; the error names its path. The watcher
    // reports it; an admin reload of the same file fails again.
    gw.write_config(
        &Gateway::config(&[a.url()], "").replace("backend: demo-backend", "backend: nope"),
    );
    let st = wait_config(&gw, "the bad file was not reported", |st| {
        st["last_error"]["trigger"] == "file_changed"
    })
    .await;
    assert_eq!(st["version"], 1);
    let r = request(gw.admin, Method::POST, "/admin/reload", &[]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let errs = r.json()["errors"].to_string();
    assert!(
        errs.contains(r#"models[0].backend: unknown backend \"nope\""#),
        "{errs}"
    );
    assert_eq!(
        post(gw.data, "/v1/chat/completions", STREAM).await.status,
        StatusCode::OK
    );
    let st = get(gw.admin, "/admin/config").await.json();
    assert_eq!(st["version"], 1);
    assert!(st["last_error"]["errors"][0]
        .as_str()
        .unwrap()
        .starts_with("models[0].backend"));

    // A valid config: the watcher applies it, and an admin reload applies it again (an admin
    // reload always does). A new model appears.
    let two_models = Gateway::config(&[a.url()], "").replace(
        "models:\n",
        "models:\n  - { name: other, backend: demo-backend }\n",
    );
    gw.write_config(&two_models);
    wait_config(&gw, "the new file was not applied", |st| st["version"] == 2).await;
    let r = request(gw.admin, Method::POST, "/admin/reload", &[]).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body())
    );
    assert_eq!(r.json()["version"], 3);
    let st = get(gw.admin, "/admin/config").await.json();
    assert_ne!(st["hash"].as_str().unwrap(), hash1);
    assert!(st["last_error"].is_null());
    let other = STREAM.replace("\"demo\"", "\"other\"");
    assert_eq!(
        post(gw.data, "/v1/chat/completions", &other).await.status,
        StatusCode::OK
    );

    // By file change alone.
    gw.write_config(&Gateway::config(&[a.url()], ""));
    wait_config(&gw, "file change was not picked up", |st| {
        st["version"] == 4
    })
    .await;
    assert_eq!(
        post(gw.data, "/v1/chat/completions", &other).await.status,
        StatusCode::NOT_FOUND
    );

    // By SIGHUP (same content: still a reload).
    gw.signal("HUP");
    wait_config(&gw, "SIGHUP did not reload", |st| st["version"] == 5).await;
    let m = gw.metrics().await;
    assert_eq!(
        metric_sum(
            &m,
            "infergate_config_reloads_total",
            &[("result", "success")]
        ),
        4.0
    );
    assert_eq!(
        metric_sum(
            &m,
            "infergate_config_reloads_total",
            &[("result", "failure")]
        ),
        2.0
    );
    // A listener address cannot change on reload.
    gw.write_config(&Gateway::config(&[a.url()], "").replace(
        "address: \"127.0.0.1:0\" }\n  admin",
        "address: \"127.0.0.1:1\" }\n  admin",
    ));
    let r = request(gw.admin, Method::POST, "/admin/reload", &[]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.json()["errors"][0]
        .as_str()
        .unwrap()
        .starts_with("listeners.data.address"));
}

#[tokio::test]
async fn admin_token_is_required_and_never_shown() {
    let a = Sim::start(&[]).await;
    let token = "s3cret-token-0123456789";
    let cfg = Gateway::config(&[a.url()], "").replace(
        "admin: { address: \"127.0.0.1:0\" }",
        "admin: { address: \"127.0.0.1:0\", token_env: TEST_ADMIN_TOKEN }",
    );
    let gw = Gateway::start_with_env(&cfg, &[("TEST_ADMIN_TOKEN", token)]).await;
    for path in ["/admin/config", "/admin/endpoints"] {
        assert_eq!(get(gw.admin, path).await.status, StatusCode::UNAUTHORIZED);
        let wrong = get_with(
            gw.admin,
            path,
            &[("authorization", "Bearer s3cret-token-0123456780")],
        )
        .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        request(gw.admin, Method::POST, "/admin/reload", &[])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let auth = format!("Bearer {token}");
    let ok = get_with(gw.admin, "/admin/config", &[("authorization", &auth)]).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(!String::from_utf8_lossy(&ok.body()).contains(token));
    assert_eq!(
        get_with(gw.admin, "/admin/endpoints", &[("authorization", &auth)])
            .await
            .status,
        StatusCode::OK
    );
    // Health and metrics stay open for probes and scrapers.
    assert_eq!(get(gw.admin, "/metrics").await.status, StatusCode::OK);
    assert_eq!(get(gw.admin, "/readyz").await.status, StatusCode::OK);

    // An inline token is shown as *** and never logged.
    let cfg = Gateway::config(&[a.url()], "").replace(
        "admin: { address: \"127.0.0.1:0\" }",
        &format!("admin: {{ address: \"127.0.0.1:0\", token: \"{token}\" }}"),
    );
    let gw = Gateway::start(&cfg).await;
    let r = get_with(gw.admin, "/admin/config", &[("authorization", &auth)]).await;
    assert_eq!(r.json()["config"]["listeners"]["admin"]["token"], "***");
    gw.write_config(&cfg.replace("models:", "bogus: 1\nmodels:"));
    let r = request(
        gw.admin,
        Method::POST,
        "/admin/reload",
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!String::from_utf8_lossy(&r.body()).contains(token));
    assert!(
        !gw.proc.output().contains(token),
        "token leaked into the log"
    );
}

#[tokio::test]
async fn client_limits_are_enforced() {
    let a = Sim::start(&["--ttft-ms", "1", "--itl-ms", "1"]).await;
    let top = "limits: { max_headers: 20, max_header_bytes: 16KiB, header_read_timeout: 500ms, max_connections: 3, max_in_flight: 2 }";
    let gw = Gateway::start(&config_with(&[a.url()], top, "")).await;

    // Too many headers, or too large a head: 431.
    let many: Vec<(String, String)> = (0..40).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let refs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = post_with(gw.data, "/v1/chat/completions", STREAM, &refs).await;
    assert_eq!(r.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let big = "x".repeat(20_000);
    let r = post_with(gw.data, "/v1/chat/completions", STREAM, &[("x-big", &big)]).await;
    assert_eq!(r.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    // A slow client that never finishes its head is disconnected.
    let mut slow = tokio::net::TcpStream::connect(gw.data).await.unwrap();
    slow.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let started = tokio::time::Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf))
        .await
        .expect("slow client not cut")
        .unwrap_or(0);
    assert!(started.elapsed() >= Duration::from_millis(400));
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
    drop(slow);

    // In-flight limit: the third concurrent request gets 503 with Retry-After.
    let slow_sim = Sim::start(&["--ttft-ms", "1000", "--itl-ms", "1"]).await;
    let gw2 = Gateway::start(&config_with(
        &[slow_sim.url()],
        "limits: { max_in_flight: 2 }",
        "",
    ))
    .await;
    let held: Vec<_> = (0..2)
        .map(|_| {
            let addr = gw2.data;
            tokio::spawn(async move { post(addr, "/v1/chat/completions", STREAM).await })
        })
        .collect();
    gw2.wait_metric(
        "infergate_endpoint_in_flight",
        &[],
        2.0,
        Duration::from_secs(10),
    )
    .await;
    let r = post(gw2.data, "/v1/chat/completions", STREAM).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(r.json()["error"]["code"], "overloaded");
    for h in held {
        assert_eq!(h.await.unwrap().status, StatusCode::OK);
    }

    // Connection limit: with 3 connections open, a 4th is answered 503 and closed.
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(tokio::net::TcpStream::connect(gw.data).await.unwrap());
    }
    wait_until(
        "the 3 connections were never counted",
        Duration::from_secs(5),
        || async {
            gw.metric("infergate_connections_open", &[("listener", "data")])
                .await
                >= 3.0
        },
    )
    .await;
    let r = post(gw.data, "/v1/chat/completions", STREAM).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers["retry-after"], "1");
    drop(open);
}

/// Waits until `/readyz` answers 503 `draining`.
async fn wait_draining(gw: &Gateway) {
    wait_for("readyz never failed", Duration::from_secs(5), || async {
        let r = get(gw.admin, "/readyz").await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(r.json()["status"], "draining");
            Ok(())
        } else {
            Err(format!("{}", r.status))
        }
    })
    .await;
}

#[tokio::test]
async fn sigterm_drains_open_streams_then_exits_zero() {
    // Streams of about 3 s, so that all 200 are open at once even on a busy machine.
    let a = Sim::start(&["--ttft-ms", "50", "--itl-ms", "20"]).await;
    let mut gw = Gateway::start(&Gateway::config(&[a.url()], "")).await;
    let body = STREAM.replace("\"max_tokens\":5", "\"max_tokens\":150");
    let n = 200;
    let mut tasks = Vec::new();
    for _ in 0..n {
        let addr = gw.data;
        let body = body.clone();
        tasks.push(tokio::spawn(async move { stream_once(addr, &body).await }));
    }
    gw.wait_metric(
        "infergate_endpoint_in_flight",
        &[],
        n as f64,
        Duration::from_secs(20),
    )
    .await;
    gw.signal("TERM");
    // Not ready while draining; new connections are refused.
    wait_draining(&gw).await;
    let late = tokio::net::TcpStream::connect(gw.data).await;
    assert!(late.is_err(), "new connection accepted while draining");
    let mut complete = 0;
    for t in tasks {
        match t.await.unwrap() {
            StreamResult::Complete => complete += 1,
            other => panic!("stream cut by drain: {other:?}"),
        }
    }
    assert_eq!(complete, n);
    assert_eq!(gw.wait_exit(Duration::from_secs(20)).await, Some(0));
}

#[tokio::test]
async fn second_sigterm_or_deadline_ends_the_drain() {
    let a = Sim::start(&["--ttft-ms", "10", "--itl-ms", "100"]).await;
    let cfg = config_with(&[a.url()], "shutdown: { drain_timeout: 1s }", "");
    let mut gw = Gateway::start(&cfg).await;
    let body = STREAM.replace("\"max_tokens\":5", "\"max_tokens\":1000");
    let addr = gw.data;
    let t = tokio::spawn(async move { stream_once(addr, &body).await });
    gw.wait_metric(
        "infergate_endpoint_in_flight",
        &[],
        1.0,
        Duration::from_secs(10),
    )
    .await;
    let started = tokio::time::Instant::now();
    gw.signal("TERM");
    assert_eq!(gw.wait_exit(Duration::from_secs(10)).await, Some(0));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(matches!(t.await.unwrap(), StreamResult::Cut(_)));

    let mut gw = Gateway::start(&Gateway::config(&[a.url()], "")).await;
    let body = STREAM.replace("\"max_tokens\":5", "\"max_tokens\":1000");
    let addr = gw.data;
    let _t = tokio::spawn(async move { stream_once(addr, &body).await });
    gw.wait_metric(
        "infergate_endpoint_in_flight",
        &[],
        1.0,
        Duration::from_secs(10),
    )
    .await;
    gw.signal("TERM");
    // The first SIGTERM was handled: the drain has begun.
    wait_draining(&gw).await;
    let started = tokio::time::Instant::now();
    gw.signal("TERM");
    assert_eq!(gw.wait_exit(Duration::from_secs(5)).await, Some(0));
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// Steady load from `workers` clients until `stop`, counting the streams that ended in `done`;
/// returns (sent, results that were not complete).
fn steady_load(
    addr: std::net::SocketAddr,
    workers: usize,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<(u64, Vec<StreamResult>)> {
    tokio::spawn(async move {
        let sent = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let stop = stop.clone();
            let sent = sent.clone();
            let done = done.clone();
            tasks.push(tokio::spawn(async move {
                let mut bad = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    sent.fetch_add(1, Ordering::Relaxed);
                    let r = stream_once(addr, STREAM).await;
                    done.fetch_add(1, Ordering::Relaxed);
                    if r != StreamResult::Complete {
                        bad.push(r);
                    }
                }
                bad
            }));
        }
        let mut bad = Vec::new();
        for t in tasks {
            bad.extend(t.await.unwrap());
        }
        (sent.load(Ordering::Relaxed), bad)
    })
}

#[tokio::test]
async fn hundred_reloads_under_load_fail_no_request() {
    let a = Sim::start(&["--ttft-ms", "5", "--itl-ms", "2"]).await;
    let b = Sim::start(&["--ttft-ms", "5", "--itl-ms", "2"]).await;
    let gw = Gateway::start(&Gateway::config(&[a.url(), b.url()], "")).await;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let load = steady_load(gw.data, 8, stop.clone(), done.clone());
    let (mut ok, mut failed) = (0, 0);
    for i in 0..100 {
        let cfg = match i % 3 {
            0 => Gateway::config(&[a.url(), b.url()], "")
                .replace("backend: demo-backend", "backend: missing"),
            1 => Gateway::config(&[a.url()], "    timeouts: { first_token: 20s }\n"),
            _ => Gateway::config(
                &[b.url(), a.url()],
                "    limits: { max_in_flight_per_endpoint: 64 }\n",
            ),
        };
        gw.write_config(&cfg);
        let r = request(gw.admin, Method::POST, "/admin/reload", &[]).await;
        if r.status == StatusCode::OK {
            ok += 1;
        } else {
            failed += 1;
        }
        // Streams keep ending between two reloads.
        let ended = done.load(Ordering::Relaxed);
        wait_until(
            "no stream ended since the last reload",
            Duration::from_secs(10),
            || async { done.load(Ordering::Relaxed) > ended },
        )
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    let (sent, bad) = load.await.unwrap();
    println!(
        "reloads: {ok} ok, {failed} rejected; requests sent {sent}, failed {}",
        bad.len()
    );
    assert_eq!((ok, failed), (66, 34));
    assert!(sent > 100, "load too light: {sent}");
    assert!(bad.is_empty(), "failed requests: {bad:?}");
    let m = gw.metrics().await;
    assert_eq!(metric_sum(&m, "infergate_endpoint_in_flight", &[]), 0.0);
}

#[tokio::test]
async fn idle_keepalive_connections_are_closed() {
    let a = Sim::start(&["--ttft-ms", "1", "--itl-ms", "1"]).await;
    let top = "limits: { keepalive_timeout: 400ms }";
    let gw = Gateway::start(&config_with(&[a.url()], top, "")).await;
    let mut conn = tokio::net::TcpStream::connect(gw.data).await.unwrap();
    conn.write_all(b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Now idle: the gateway closes the connection after the keep-alive timeout.
    let idle = tokio::time::Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
        .await
        .expect("idle connection was not closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    let took = idle.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(3),
        "{took:?}"
    );
    gw.wait_metric(
        "infergate_connections_open",
        &[("listener", "data")],
        0.0,
        Duration::from_secs(5),
    )
    .await;
}
