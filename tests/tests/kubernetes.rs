//! Kubernetes discovery end to end: the real gateway finds its endpoints (and the control's
//! health feed) through kube-rs against a fake API server (infergate-fake-kube) in this
//! process; each "pod" is a real `infergate-sim` on its own loopback address (127.0.N.x), all
//! on one port, as pods of a Deployment are.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use infergate_e2e::*;
use infergate_fake_kube::{FakeKube, FakePod};
use tokio::process::Command;
use tokio::time::Instant;

const WITHIN: Duration = Duration::from_secs(15);
const STREAM: &str = r#"{"model":"llama","messages":[{"role":"user","content":"hi"}],"max_tokens":20,"stream":true}"#;

/// A fake API server and a kubeconfig for it.
struct Cluster {
    kube: FakeKube,
    kubeconfig: PathBuf,
}

async fn cluster() -> Cluster {
    let kube = FakeKube::start().await.unwrap();
    let kubeconfig = temp_path("kubeconfig");
    kube.write_kubeconfig(&kubeconfig).unwrap();
    Cluster { kube, kubeconfig }
}

impl Cluster {
    async fn gateway(&self, config: &str) -> Gateway {
        let kc = self.kubeconfig.to_str().unwrap();
        Gateway::start_with_env(config, &[("KUBECONFIG", kc)]).await
    }
}

/// A port free on the first address of subnet `127.0.N.0` (the pods' shared port).
fn shared_port(subnet: u8) -> u16 {
    let l = std::net::TcpListener::bind(format!("127.0.{subnet}.2:0")).unwrap();
    l.local_addr().unwrap().port()
}

/// A model server "pod": a simulator on `ip:port` that names itself in `x-served-version`.
async fn pod_server(ip: &str, port: u16, name: &str) -> Proc {
    let mut cmd = Command::new(bin("infergate-sim"));
    cmd.args([
        "--listen",
        &format!("{ip}:{port}"),
        "--served-version",
        name,
    ])
    .args(["--model", "llama", "--ttft-ms", "20", "--itl-ms", "10"]);
    let (proc, _) = Proc::spawn(
        cmd,
        &[|l: &str| {
            l.strip_prefix("infergate-sim listening on http://")?
                .trim()
                .parse()
                .ok()
        }],
    )
    .await;
    proc
}

fn vllm_pod(name: &str, ip: &str, port: u16, ready: bool) -> FakePod {
    FakePod::new("models", name)
        .label("app", "vllm")
        .node("node-a")
        .ip(ip)
        .named_port("http", port)
        .ready(ready)
}

fn discovery_config(extra: &str) -> String {
    format!(
        "listeners:\n  data: {{ address: \"127.0.0.1:0\" }}\n  admin: {{ address: \"127.0.0.1:0\" }}\n{extra}\
         backends:\n  - name: llama\n    discovery:\n      kubernetes: {{ namespace: models, selector: {{ app: vllm }}, port: http }}\n\
         models:\n  - {{ name: llama, backend: llama }}\n"
    )
}

/// Which pod served one short streamed request (its `x-served-version`), or why it failed.
async fn served_by(addr: SocketAddr) -> Result<String, String> {
    let probe = STREAM.replace("\"max_tokens\":20", "\"max_tokens\":2");
    let r = post(addr, "/v1/chat/completions", &probe).await;
    let body = String::from_utf8_lossy(&r.body()).into_owned();
    if r.status != 200 || !body.trim_end().ends_with("data: [DONE]") {
        return Err(format!("{} {body}", r.status));
    }
    Ok(r.headers
        .get("x-served-version")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default())
}

/// The URLs of backend `llama` in `GET /admin/endpoints`.
async fn endpoint_urls(admin: SocketAddr) -> BTreeSet<String> {
    let v = get(admin, "/admin/endpoints").await.json();
    v["backends"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["url"].as_str().unwrap().to_owned())
        .collect()
}

/// Sends requests until one is served by `pod`; returns how long that took.
async fn until_served_by(addr: SocketAddr, pod: &str) -> Duration {
    let start = Instant::now();
    wait_until(&format!("no request served by {pod}"), WITHIN, || async {
        served_by(addr).await.is_ok_and(|p| p == pod)
    })
    .await;
    start.elapsed()
}

#[tokio::test]
async fn pods_that_turn_ready_get_traffic_and_pods_that_leave_get_none() {
    let c = cluster().await;
    let port = shared_port(1);
    let _a = pod_server("127.0.1.2", port, "pod-a").await;
    let _b = pod_server("127.0.1.3", port, "pod-b").await;
    c.kube.apply_pod(vllm_pod("pod-a", "127.0.1.2", port, true));
    c.kube
        .apply_pod(vllm_pod("pod-b", "127.0.1.3", port, false));
    let gw = c.gateway(&discovery_config("")).await;

    until_served_by(gw.data, "pod-a").await;
    let url_a = format!("http://127.0.1.2:{port}");
    let url_b = format!("http://127.0.1.3:{port}");
    assert_eq!(
        endpoint_urls(gw.admin).await,
        BTreeSet::from([url_a.clone()])
    );
    let ep = gw.endpoint(&url_a).await;
    assert_eq!(ep["source"], "kubernetes", "{ep}");
    assert_eq!(ep["labels"]["node"], "node-a", "{ep}");
    assert_eq!(ep["labels"]["pod"], "models/pod-a", "{ep}");
    assert!(ep["age_s"].as_u64().is_some(), "{ep}");
    gw.wait_metric(
        "infergate_discovery_objects",
        &[("source", "llama")],
        1.0,
        WITHIN,
    )
    .await;

    // pod-b turns Ready: it gets traffic.
    let ready_at = Instant::now();
    c.kube.set_ready("models", "pod-b", true).unwrap();
    let (in_table, first) = tokio::join!(
        async {
            wait_until("pod-b in the table", WITHIN, || async {
                endpoint_urls(gw.admin).await.contains(&url_b)
            })
            .await;
            ready_at.elapsed()
        },
        until_served_by(gw.data, "pod-b")
    );
    eprintln!(
        "pod Ready -> in /admin/endpoints: {} ms; -> first request served by it: {} ms",
        in_table.as_millis(),
        first.as_millis()
    );
    assert!(first < Duration::from_secs(1), "{first:?}");

    // Streams open on pod-b when it turns NotReady finish; it gets no new request after 1 s.
    let streams: Vec<_> = (0..6)
        .map(|_| {
            let addr = gw.data;
            tokio::spawn(async move {
                let body = STREAM.replace("\"max_tokens\":20", "\"max_tokens\":150");
                let r = post(addr, "/v1/chat/completions", &body).await;
                let by = r
                    .headers
                    .get("x-served-version")
                    .map(|v| v.to_str().unwrap().to_owned());
                (
                    by,
                    String::from_utf8_lossy(&r.body())
                        .trim_end()
                        .ends_with("data: [DONE]"),
                )
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let not_ready_at = Instant::now();
    c.kube.set_ready("models", "pod-b", false).unwrap();
    let gone = tokio::spawn({
        let (admin, url_b) = (gw.admin, url_b.clone());
        async move {
            wait_until("pod-b out of the table", WITHIN, || async {
                !endpoint_urls(admin).await.contains(&url_b)
            })
            .await;
            not_ready_at.elapsed()
        }
    });
    let mut last_new_on_b = None;
    while not_ready_at.elapsed() < Duration::from_secs(2) {
        let sent = Instant::now();
        if served_by(gw.data).await.as_deref() == Ok("pod-b") {
            last_new_on_b = Some(sent - not_ready_at);
        }
    }
    let gone = gone.await.unwrap();
    eprintln!(
        "pod NotReady -> out of /admin/endpoints: {} ms; last new request sent to it: {last_new_on_b:?} after",
        gone.as_millis()
    );
    assert!(gone < Duration::from_secs(1), "{gone:?}");
    assert!(
        last_new_on_b.is_none_or(|d| d < Duration::from_secs(1)),
        "pod-b got a request {last_new_on_b:?} after it turned NotReady"
    );
    let mut on_b = 0;
    for s in streams {
        let (by, complete) = s.await.unwrap();
        assert!(
            complete,
            "a stream open during the change was cut (served by {by:?})"
        );
        on_b += usize::from(by.as_deref() == Some("pod-b"));
    }
    assert!(
        on_b > 0,
        "no stream was open on pod-b when it turned NotReady"
    );
    assert_eq!(
        endpoint_urls(gw.admin).await,
        BTreeSet::from([url_a.clone()])
    );

    // Ready again, then deleted: gone within 1 s too.
    c.kube.set_ready("models", "pod-b", true).unwrap();
    until_served_by(gw.data, "pod-b").await;
    let deleted_at = Instant::now();
    c.kube.delete_pod("models", "pod-b").unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for _ in 0..20 {
        assert_eq!(served_by(gw.data).await.as_deref(), Ok("pod-a"));
    }
    assert!(
        !endpoint_urls(gw.admin).await.contains(&url_b),
        "{:?}",
        deleted_at.elapsed()
    );
    gw.wait_metric(
        "infergate_discovery_objects",
        &[("source", "llama")],
        1.0,
        WITHIN,
    )
    .await;
}

#[tokio::test]
async fn a_rolling_update_under_streaming_load_fails_nothing() {
    let c = cluster().await;
    let port = shared_port(2);
    let mut old = Vec::new();
    for i in 0..4 {
        let ip = format!("127.0.2.{}", 2 + i);
        old.push(pod_server(&ip, port, &format!("v1-{i}")).await);
        c.kube
            .apply_pod(vllm_pod(&format!("v1-{i}"), &ip, port, true));
    }
    let gw = c.gateway(&discovery_config("")).await;
    wait_until("4 endpoints", WITHIN, || async {
        endpoint_urls(gw.admin).await.len() == 4
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (stop, ok, failed, addr) = (stop.clone(), ok.clone(), failed.clone(), gw.data);
            tokio::spawn(async move {
                let mut errors = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match stream_once(addr, STREAM).await {
                        StreamResult::Complete => ok.fetch_add(1, Ordering::Relaxed),
                        other => {
                            errors.push(format!("{other:?}"));
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
                errors
            })
        })
        .collect();

    // One pod at a time: the new one starts and turns Ready, the old one starts terminating,
    // and its process exits 2 s later (its streams last well under that).
    let mut new = Vec::new();
    for i in 0..4 {
        let ip = format!("127.0.2.{}", 6 + i);
        new.push(pod_server(&ip, port, &format!("v2-{i}")).await);
        c.kube
            .apply_pod(vllm_pod(&format!("v2-{i}"), &ip, port, false));
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.kube
            .set_ready("models", &format!("v2-{i}"), true)
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.kube
            .set_terminating("models", &format!("v1-{i}"))
            .unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(old.remove(0));
        c.kube.delete_pod("models", &format!("v1-{i}")).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut errors = Vec::new();
    for w in workers {
        errors.extend(w.await.unwrap());
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("rolling update: {ok} streams complete, {failed} failed");
    assert_eq!(failed, 0, "{errors:?}");
    assert!(ok > 100, "only {ok} streams during the update");
    let want: BTreeSet<String> = (0..4)
        .map(|i| format!("http://127.0.2.{}:{port}", 6 + i))
        .collect();
    assert_eq!(endpoint_urls(gw.admin).await, want);
}

#[tokio::test]
async fn the_api_server_away_for_10_s_changes_nothing() {
    let c = cluster().await;
    let port = shared_port(3);
    let _a = pod_server("127.0.3.2", port, "pod-a").await;
    let _b = pod_server("127.0.3.3", port, "pod-b").await;
    let _c = pod_server("127.0.3.4", port, "pod-c").await;
    c.kube.apply_pod(vllm_pod("pod-a", "127.0.3.2", port, true));
    c.kube.apply_pod(vllm_pod("pod-b", "127.0.3.3", port, true));
    let gw = c.gateway(&discovery_config("")).await;
    wait_until("2 endpoints", WITHIN, || async {
        endpoint_urls(gw.admin).await.len() == 2
    })
    .await;
    let before = endpoint_urls(gw.admin).await;

    c.kube.set_down(true);
    let down_at = Instant::now();
    let mut served = 0;
    while down_at.elapsed() < Duration::from_secs(10) {
        let by = served_by(gw.data).await;
        assert!(matches!(by.as_deref(), Ok("pod-a" | "pod-b")), "{by:?}");
        served += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(endpoint_urls(gw.admin).await, before);
    let age = gw
        .metric(
            "infergate_discovery_sync_age_seconds",
            &[("source", "llama")],
        )
        .await;
    let errors = gw
        .metric("infergate_discovery_errors_total", &[("source", "llama")])
        .await;
    eprintln!("API server away 10 s: {served} requests served, sync age {age} s, {errors} errors");
    assert!(age >= 5.0, "sync age {age}");
    assert!(errors >= 1.0, "errors {errors}");

    // Back: a change made meanwhile is seen, and history compaction forces a fresh list.
    c.kube.apply_pod(vllm_pod("pod-c", "127.0.3.4", port, true));
    c.kube.set_down(false);
    until_served_by(gw.data, "pod-c").await;
    gw.wait_metric(
        "infergate_discovery_sync_age_seconds",
        &[("source", "llama")],
        0.0,
        WITHIN,
    )
    .await;
    let lists = c.kube.counters().lists;
    c.kube.compact();
    c.kube.delete_pod("models", "pod-a").unwrap();
    wait_until("pod-a gone after compaction", WITHIN, || async {
        !endpoint_urls(gw.admin)
            .await
            .contains(&format!("http://127.0.3.2:{port}"))
    })
    .await;
    assert!(
        c.kube.counters().lists > lists,
        "no new list after 410 Gone"
    );
}

#[tokio::test]
async fn two_replicas_see_the_same_endpoints_and_stick_the_same_way() {
    let c = cluster().await;
    let port = shared_port(4);
    let mut servers = Vec::new();
    for (i, version) in ["v1", "v1", "v2", "v2"].iter().enumerate() {
        let ip = format!("127.0.4.{}", 2 + i);
        servers.push(pod_server(&ip, port, version).await);
        c.kube
            .apply_pod(vllm_pod(&format!("pod-{i}"), &ip, port, true).label("version", *version));
    }
    let config = format!(
        "listeners:\n  data: {{ address: \"127.0.0.1:0\" }}\n  admin: {{ address: \"127.0.0.1:0\" }}\n\
         backends:\n  - name: llama\n    discovery:\n      kubernetes: {{ namespace: models, selector: {{ app: vllm }}, port: {port} }}\n\
         models:\n  - name: llama\n    variants:\n      - {{ name: stable, backend: llama, selector: {{ version: v1 }} }}\n\
         \x20     - {{ name: canary, backend: llama, selector: {{ version: v2 }} }}\n\
         \x20   routes:\n      - split: [{{ variant: stable, weight: 50 }}, {{ variant: canary, weight: 50 }}]\n\
         \x20       sticky: {{ header: x-user-id }}\n"
    );
    let one = c.gateway(&config).await;
    let two = c.gateway(&config).await;
    for gw in [&one, &two] {
        wait_until("4 endpoints", WITHIN, || async {
            endpoint_urls(gw.admin).await.len() == 4
        })
        .await;
    }
    assert_eq!(
        endpoint_urls(one.admin).await,
        endpoint_urls(two.admin).await
    );
    let mut versions = BTreeSet::new();
    for user in 0..40 {
        let headers = [("x-user-id", format!("user-{user}"))];
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let a = post_with(one.data, "/v1/chat/completions", STREAM, &h).await;
        let b = post_with(two.data, "/v1/chat/completions", STREAM, &h).await;
        let va = a.headers["x-served-version"].to_str().unwrap().to_owned();
        let vb = b.headers["x-served-version"].to_str().unwrap().to_owned();
        assert_eq!(
            va, vb,
            "user-{user} went to {va} on one replica and {vb} on the other"
        );
        versions.insert(va);
    }
    assert_eq!(versions.len(), 2, "40 users all on {versions:?}");
}

/// Writes the fake PodResources state at once (a rename).
fn write_state(path: &Path, state: &serde_json::Value) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, state.to_string()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn a_gpu_fault_ejects_exactly_the_pod_on_that_gpu() {
    let dir = temp_path("k8s-gpu");
    std::fs::create_dir_all(&dir).unwrap();
    // The kubelet: pod-a holds GPU 0, pod-b holds GPU 1.
    let socket = dir.join("kubelet.sock");
    let state = dir.join("state.json");
    let holds = |name: &str, uuid: &str| {
        serde_json::json!({"namespace": "models", "name": name,
            "containers": [{"name": "vllm", "devices": [{"resource_name": "nvidia.com/gpu", "device_ids": [uuid]}]}]})
    };
    write_state(
        &state,
        &serde_json::json!({"pods": [holds("pod-a", "GPU-aaaa"), holds("pod-b", "GPU-bbbb")]}),
    );
    let mut cmd = Command::new(bin("infergate-fake-podresources"));
    cmd.arg("--socket").arg(&socket).arg("--state").arg(&state);
    let (_kubelet, _) = Proc::spawn(cmd, &[]).await;
    wait_until("the PodResources socket", WITHIN, || async {
        socket.exists()
    })
    .await;

    // The control process: GPU 1 reports XID 79 after 4 s.
    let scenario = dir.join("scenario.yaml");
    std::fs::write(
        &scenario,
        "devices: [{ uuid: GPU-aaaa }, { uuid: GPU-bbbb }]\ntimeline:\n  - { at: 4s, gpu: 1, xid: 79 }\n",
    )
    .unwrap();
    let config = dir.join("control.yaml");
    std::fs::write(
        &config,
        format!(
            "node: node-a\nlisten: 127.0.0.1:0\ngpu: {{ interval: 200ms }}\nremediation: {{ mode: off }}\n\
             pod_resources: {{ socket: {}, interval: 200ms }}\n",
            socket.display()
        ),
    )
    .unwrap();
    let (_control, feed) = start_control(
        &config,
        &[("INFERGATE_FAKE_NVML_SCENARIO", scenario.as_path())],
    )
    .await;

    // The cluster: two model pods and the control pod on node-a, found by the gateway.
    let c = cluster().await;
    let port = shared_port(5);
    let _a = pod_server("127.0.5.2", port, "pod-a").await;
    let _b = pod_server("127.0.5.3", port, "pod-b").await;
    c.kube.apply_pod(vllm_pod("pod-a", "127.0.5.2", port, true));
    c.kube.apply_pod(vllm_pod("pod-b", "127.0.5.3", port, true));
    c.kube.apply_pod(
        FakePod::new("infergate-system", "control-x1")
            .label("app", "infergate-control")
            .node("node-a")
            .ip(feed.ip().to_string())
            .port(feed.port())
            .ready(true),
    );
    let feeds = format!(
        "health_feeds:\n  - kubernetes: {{ namespace: infergate-system, selector: {{ app: infergate-control }}, port: {} }}\n",
        feed.port()
    );
    let gw = c.gateway(&discovery_config(&feeds)).await;
    let (url_a, url_b) = (
        format!("http://127.0.5.2:{port}"),
        format!("http://127.0.5.3:{port}"),
    );
    gw.wait_metric(
        "infergate_discovery_objects",
        &[("source", "health_feeds[0]")],
        1.0,
        WITHIN,
    )
    .await;
    let ejected = gw.wait_endpoint_state(&url_b, "ejected", WITHIN).await;
    assert!(ejected.to_string().contains("XID 79"), "{ejected}");
    let healthy = gw.endpoint(&url_a).await;
    assert_eq!(healthy["state"], "healthy", "{healthy}");
    for _ in 0..20 {
        assert_eq!(served_by(gw.data).await.as_deref(), Ok("pod-a"));
    }
}

#[tokio::test]
async fn a_replica_is_ready_only_once_discovery_found_its_endpoints() {
    let c = cluster().await;
    let port = shared_port(6);
    let _a = pod_server("127.0.6.2", port, "pod-a").await;
    c.kube.apply_pod(vllm_pod("pod-a", "127.0.6.2", port, true));
    c.kube.set_down(true);
    let gw = c.gateway(&discovery_config("")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(get(gw.admin, "/readyz").await.status, 503);
    assert!(endpoint_urls(gw.admin).await.is_empty());
    c.kube.set_down(false);
    wait_until("ready after the first list", WITHIN, || async {
        get(gw.admin, "/readyz").await.status == 200
    })
    .await;
    assert_eq!(served_by(gw.data).await.as_deref(), Ok("pod-a"));
}
