//! Which pods hold which GPUs, end to end: the real `infergate-control` on the fake NVML
//! library (two GPUs with known UUIDs) reads a fake kubelet PodResources socket
//! (`infergate-fake-podresources`, answering from a state file the test rewrites) and
//! publishes the pods on `GET /v1/health`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use infergate_e2e::*;
use tokio::process::Command;

const WITHIN: Duration = Duration::from_secs(15);

/// Writes the fake's state at once (a rename), so that a call never reads half a file.
fn write_state(path: &Path, state: &serde_json::Value) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, state.to_string()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn pod(ns: &str, name: &str, container: &str, resource: &str, ids: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "namespace": ns, "name": name,
        "containers": [{"name": container, "devices": [{"resource_name": resource, "device_ids": ids}]}]
    })
}

async fn start_fake(socket: &Path, state: &Path) -> Proc {
    let mut cmd = Command::new(bin("infergate-fake-podresources"));
    cmd.arg("--socket").arg(socket).arg("--state").arg(state);
    let (proc, _) = Proc::spawn(cmd, &[]).await;
    wait_until("the fake's socket exists", WITHIN, || async {
        socket.exists()
    })
    .await;
    proc
}

async fn health(addr: SocketAddr) -> serde_json::Value {
    get(addr, "/v1/health").await.json()
}

/// A pod on the feed: `namespace/name`, container, and each GPU's UUID and index.
type Entry = (String, String, Vec<(String, Option<u64>)>);

/// The feed's pods as `(namespace/name, container, [(uuid, index)])`.
fn pods(doc: &serde_json::Value) -> Vec<Entry> {
    doc["pods"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|p| {
            (
                format!(
                    "{}/{}",
                    p["namespace"].as_str().unwrap(),
                    p["name"].as_str().unwrap()
                ),
                p["container"].as_str().unwrap().to_owned(),
                p["gpus"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|g| (g["uuid"].as_str().unwrap().to_owned(), g["index"].as_u64()))
                    .collect(),
            )
        })
        .collect()
}

fn entry(pod: &str, container: &str, gpus: &[(&str, Option<u64>)]) -> Entry {
    (
        pod.to_owned(),
        container.to_owned(),
        gpus.iter().map(|(u, i)| ((*u).to_owned(), *i)).collect(),
    )
}

#[tokio::test]
async fn control_publishes_which_pods_hold_which_gpus() {
    let dir = temp_path("podresources");
    std::fs::create_dir_all(&dir).unwrap();
    let socket: PathBuf = dir.join("kubelet.sock");
    let state = dir.join("state.json");
    write_state(
        &state,
        &serde_json::json!({"pods": [
            pod("models", "llama-0", "vllm", "nvidia.com/gpu", &["GPU-bbbb"]),
            pod("models", "nic-only", "app", "example.com/nic", &["eth1"]),
        ]}),
    );
    let mut fake = start_fake(&socket, &state).await;

    let scenario = dir.join("scenario.yaml");
    std::fs::write(
        &scenario,
        "devices: [{ uuid: GPU-aaaa }, { uuid: GPU-bbbb }]\n",
    )
    .unwrap();
    let config = dir.join("control.yaml");
    std::fs::write(
        &config,
        format!(
            "node: node-a\nlisten: 127.0.0.1:0\ngpu: {{ interval: 200ms }}\nremediation: {{ mode: off }}\n\
             pod_resources: {{ socket: {}, resources: [nvidia.com/gpu], interval: 200ms, timeout: 2s }}\n",
            socket.display()
        ),
    )
    .unwrap();
    let (control, addr) = start_control(
        &config,
        &[("INFERGATE_FAKE_NVML_SCENARIO", scenario.as_path())],
    )
    .await;

    // The pod on the second GPU, by UUID and index; the pod without a GPU is left out.
    let first = wait_for("the feed lists llama-0 on GPU 1", WITHIN, || async {
        let doc = health(addr).await;
        if pods(&doc) == vec![entry("models/llama-0", "vllm", &[("GPU-bbbb", Some(1))])] {
            Ok(doc)
        } else {
            Err(doc.to_string())
        }
    })
    .await;
    let v1 = first["version"].as_u64().unwrap();
    wait_metric_at(
        addr,
        "infergate_control_podresources_pods",
        &[],
        1.0,
        WITHIN,
    )
    .await;

    // The kubelet's answer changes: the feed follows with a higher version.
    write_state(
        &state,
        &serde_json::json!({"pods": [
            pod("models", "llama-0", "vllm", "nvidia.com/gpu", &["GPU-bbbb", "GPU-aaaa"]),
            pod("models", "qwen-0", "vllm", "nvidia.com/gpu", &["MIG-5c1d"]),
        ]}),
    );
    let second = wait_for("the feed follows the new list", WITHIN, || async {
        let doc = health(addr).await;
        let want = vec![
            entry(
                "models/llama-0",
                "vllm",
                &[("GPU-aaaa", Some(0)), ("GPU-bbbb", Some(1))],
            ),
            entry("models/qwen-0", "vllm", &[("MIG-5c1d", None)]),
        ];
        if pods(&doc) == want {
            Ok(doc)
        } else {
            Err(doc.to_string())
        }
    })
    .await;
    let v2 = second["version"].as_u64().unwrap();
    assert!(v2 > v1, "version {v2} after {v1}");
    assert!(
        second["pods"][1]["gpus"][0].get("index").is_none(),
        "{second}"
    );
    wait_metric_at(
        addr,
        "infergate_control_podresources_pods",
        &[],
        2.0,
        WITHIN,
    )
    .await;
    assert_eq!(
        metric_at(addr, "infergate_control_podresources_errors_total", &[]).await,
        0.0
    );

    // The kubelet goes away (its socket first, so every call fails the same way): the last
    // list stays, failures are counted.
    std::fs::remove_file(&socket).unwrap();
    fake.child.kill().await.unwrap();
    wait_until("failed List calls are counted", WITHIN, || async {
        metric_at(addr, "infergate_control_podresources_errors_total", &[]).await >= 3.0
    })
    .await;
    let after = health(addr).await;
    assert_eq!(pods(&after), pods(&second));
    assert_eq!(after["version"], second["version"]);
    let warnings = control
        .output()
        .lines()
        .filter(|l| l.contains("cannot read PodResources"))
        .count();
    assert_eq!(
        warnings,
        1,
        "one warning for one change of state:\n{}",
        control.output()
    );

    // Back: an empty list is published.
    write_state(&state, &serde_json::json!({"pods": []}));
    let _fake = start_fake(&socket, &state).await;
    wait_until("the feed drops the pods", WITHIN, || async {
        let doc = health(addr).await;
        doc.get("pods").is_none() && doc["version"].as_u64().unwrap() > v2
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}
