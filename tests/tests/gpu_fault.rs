//! GPU-aware ejection end to end: the real `infergate-control` reading the fake NVML library
//! (a scenario in which a GPU reports a fault), its health feed, and the real gateway in front
//! of two simulated model servers, one per GPU. The hold-down after a recovery and a stale feed
//! failing open are tested in process on a paused clock: gateway/tests/component.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use infergate_e2e::*;
use tokio::time::Instant;

const STREAM: &str =
    r#"{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":20,"stream":true}"#;

struct Control {
    _proc: Proc,
    addr: SocketAddr,
    spawned: Instant,
}

async fn control_on(scenario: &str, extra_config: &str) -> Control {
    let dir = temp_path("control");
    std::fs::create_dir_all(&dir).unwrap();
    let scenario_path = dir.join("scenario.yaml");
    std::fs::write(&scenario_path, scenario).unwrap();
    let config = dir.join("control.yaml");
    std::fs::write(
        &config,
        format!("node: node-a\nlisten: 127.0.0.1:0\ngpu: {{ interval: 500ms, call_timeout: 1s }}\nremediation: {{ mode: local }}\n{extra_config}"),
    )
    .unwrap();
    let spawned = Instant::now();
    let (proc, addr) = start_control(
        &config,
        &[("INFERGATE_FAKE_NVML_SCENARIO", scenario_path.as_path())],
    )
    .await;
    Control {
        _proc: proc,
        addr,
        spawned,
    }
}

fn gateway_config(control: SocketAddr, gpu0: &Sim, gpu1: &Sim, hold_down: &str) -> String {
    [
        "listeners:".to_owned(),
        "  data: { address: \"127.0.0.1:0\" }".to_owned(),
        "  admin: { address: \"127.0.0.1:0\" }".to_owned(),
        "health_feeds:".to_owned(),
        format!("  - {{ url: \"http://{control}/v1/health\", stale_after: 2s, hold_down: {hold_down} }}"),
        "backends:".to_owned(),
        "  - name: demo".to_owned(),
        "    endpoints:".to_owned(),
        format!("      - {{ url: \"{}\", labels: {{ node: node-a, gpus: \"0\" }} }}", gpu0.url()),
        format!("      - {{ url: \"{}\", labels: {{ node: node-a, gpus: \"1\" }} }}", gpu1.url()),
        "models:".to_owned(),
        "  - { name: demo, backend: demo }".to_owned(),
    ]
    .join("\n")
        + "\n"
}

/// One request as the client saw it: when it was sent, which GPU's server answered, how it ended.
#[derive(Debug, Clone)]
struct Sent {
    at: Instant,
    gpu: String,
    complete: bool,
}

async fn stream_tagged(addr: SocketAddr) -> Sent {
    let at = Instant::now();
    let r = post(addr, "/v1/chat/completions", STREAM).await;
    let gpu = r
        .headers
        .get("x-served-version")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let complete = r.status == StatusCode::OK && r.events().last().is_some_and(|e| e.1 == "[DONE]");
    Sent { at, gpu, complete }
}

#[tokio::test]
async fn gpu_fault_ejects_its_endpoint_within_a_second() {
    let gpu0 = Sim::start(&[
        "--ttft-ms",
        "10",
        "--itl-ms",
        "10",
        "--served-version",
        "gpu0",
    ])
    .await;
    let gpu1 = Sim::start(&[
        "--ttft-ms",
        "10",
        "--itl-ms",
        "10",
        "--served-version",
        "gpu1",
    ])
    .await;
    let scenario = "devices: [{}, {}]\ntimeline:\n  - { at: 3s, gpu: 1, xid: 79 }\n";
    let control = control_on(scenario, "").await;
    let gw = Gateway::start(&gateway_config(control.addr, &gpu0, &gpu1, "10s")).await;

    // Steady load from 8 clients.
    let log: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (log, stop, addr) = (log.clone(), stop.clone(), gw.data);
        workers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let s = stream_tagged(addr).await;
                log.lock().unwrap().push(s);
            }
        }));
    }
    // Poll the gateway until the GPU-1 endpoint is out.
    let fault_at_latest = control.spawned + Duration::from_secs(3);
    let ep = gw
        .wait_endpoint_state(
            &gpu1.url(),
            "ejected",
            (fault_at_latest + Duration::from_secs(5)).saturating_duration_since(Instant::now()),
        )
        .await;
    let ejected_at = Instant::now();
    let ejection = &ep["ejection"];
    assert_eq!(ejection["reason"], "gpu_unhealthy");
    assert!(
        ejection["detail"].as_str().unwrap().contains("XID 79"),
        "{ejection}"
    );
    let sim1_at_ejection = sim_requests(&gpu1).await;
    // Load goes on until enough requests were sent after the ejection.
    wait_until(
        "too few requests after the ejection",
        Duration::from_secs(30),
        || async {
            let log = log.lock().unwrap();
            log.iter()
                .filter(|s| s.at > ejected_at + Duration::from_millis(20))
                .count()
                >= 40
        },
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let sim1_end = sim_requests(&gpu1).await;
    let sent = log.lock().unwrap().clone();
    // The fault happened 3 s after nvmlInit, which came after the spawn: the delay from fault
    // to ejection is at most this.
    let delay = ejected_at.saturating_duration_since(fault_at_latest);
    let after: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.at > ejected_at + Duration::from_millis(20))
        .collect();
    let to_faulty_after = after.iter().filter(|s| s.gpu == "gpu1").count();
    let incomplete = sent.iter().filter(|s| !s.complete).count();
    println!(
        "fault to ejection <= {delay:?}; requests sent {}, after ejection {}, of those to the faulty GPU {to_faulty_after}; at the simulator: {} requests on GPU 1 at ejection, {} at the end; incomplete {incomplete}",
        sent.len(),
        after.len(),
        sim1_at_ejection,
        sim1_end
    );
    assert!(
        delay < Duration::from_secs(1),
        "fault to ejection took up to {delay:?}"
    );
    assert!(
        after.len() > 20,
        "load too light after ejection: {}",
        after.len()
    );
    assert_eq!(to_faulty_after, 0);
    // At most the requests already routed when the ejection was observed reach GPU 1 later.
    assert!(
        sim1_end - sim1_at_ejection <= 8.0,
        "{sim1_at_ejection} -> {sim1_end}"
    );
    // Streams that were running on GPU 1 finished.
    assert_eq!(incomplete, 0);
    let m = gw.metrics().await;
    assert_eq!(
        metric_sum(
            &m,
            "infergate_endpoint_ejected",
            &[("endpoint", &gpu1.url())]
        ),
        1.0
    );
    assert_eq!(metric_sum(&m, "infergate_health_feed_stale", &[]), 0.0);
}

async fn sim_requests(sim: &Sim) -> f64 {
    metric_at(sim.addr, "infergate_sim_requests_received_total", &[]).await
}
