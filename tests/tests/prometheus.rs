//! A real Prometheus server scrapes the gateway's admin listener and answers queries on what it
//! scraped. Needs the `prometheus` binary (Debian package `prometheus`; `.ci/run` installs it,
//! or set `PROMETHEUS_BIN`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use http::StatusCode;
use infergate_e2e::*;
use tokio::process::Command;

async fn query(prom: SocketAddr, q: &str) -> serde_json::Value {
    try_query(prom, q).await.unwrap()
}

/// The answer to `q`, or why there is none (Prometheus answers 503 while it starts).
async fn try_query(prom: SocketAddr, q: &str) -> Result<serde_json::Value, String> {
    let path = format!("/api/v1/query?query={}", encode(q));
    let r = get(prom, &path).await;
    if r.status == StatusCode::OK {
        Ok(r.json())
    } else {
        Err(format!(
            "{}: {}",
            r.status,
            String::from_utf8_lossy(&r.body())
        ))
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn scalar(v: &serde_json::Value) -> Option<f64> {
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[tokio::test]
async fn prometheus_scrapes_and_queries_gateway_metrics() {
    let sim = Sim::start(&["--ttft-ms", "100", "--itl-ms", "10"]).await;
    let gw = Gateway::start(&Gateway::config(&[sim.url()], "")).await;
    let body = r#"{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":10,"stream":true,"stream_options":{"include_usage":true}}"#;
    for _ in 0..5 {
        assert_eq!(
            post(gw.data, "/v1/chat/completions", body).await.status,
            StatusCode::OK
        );
    }

    let dir = temp_path("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
             scrape_configs:\n  - job_name: infergate\n    static_configs:\n      - targets: ['{}']\n",
            gw.admin
        ),
    )
    .unwrap();
    let prom_addr = free_port();
    let bin = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".into());
    let mut prom = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={prom_addr}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start prometheus (install the Debian package `prometheus`)");

    // Wait until Prometheus has scraped the target and stored the counter.
    let requests = wait_for(
        "Prometheus never stored the gateway's metrics",
        Duration::from_secs(60),
        || async {
            tokio::time::timeout(
                Duration::from_secs(2),
                tokio::net::TcpStream::connect(prom_addr),
            )
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(|e| format!("connect: {e}"))?;
            let v = try_query(
                prom_addr,
                r#"sum(infergate_requests_total{model="demo",outcome="success"})"#,
            )
            .await?;
            scalar(&v).ok_or_else(|| v.to_string())
        },
    )
    .await;
    assert_eq!(requests, 5.0);

    let up = query(prom_addr, "up{job=\"infergate\"}").await;
    assert_eq!(scalar(&up), Some(1.0));
    let ttft = query(
        prom_addr,
        r#"histogram_quantile(0.5, sum by (le) (infergate_time_to_first_token_seconds_bucket{model="demo"}))"#,
    )
    .await;
    let p50 = scalar(&ttft).unwrap();
    assert!((0.09..=0.125).contains(&p50), "p50 TTFT {p50}");
    let tokens = query(
        prom_addr,
        r#"sum(infergate_output_tokens_total{model="demo"})"#,
    )
    .await;
    assert_eq!(scalar(&tokens), Some(50.0));

    prom.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
