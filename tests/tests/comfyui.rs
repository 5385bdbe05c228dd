//! ComfyUI through the real gateway and two simulator instances: a job's WebSocket, prompt,
//! history and image reach the instance that took its prompt while the other instance serves
//! another client; the WebSocket tunnel ends at the backend's idle timeout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::Duration;

use http::StatusCode;
use infergate_e2e::*;
use infergate_loadtest::sim::ws_client::WsClient;

async fn comfy_sim() -> Sim {
    Sim::start(&[
        "--ttft-ms",
        "0",
        "--itl-ms",
        "1",
        "--model",
        "sd15.safetensors",
    ])
    .await
}

fn config(sims: &[&Sim], timeouts: &str) -> String {
    let eps: Vec<String> = sims
        .iter()
        .map(|s| format!("{{ url: \"{}\" }}", s.url()))
        .collect();
    format!(
        "listeners:\n  data: {{ address: \"127.0.0.1:0\" }}\n  admin: {{ address: \"127.0.0.1:0\" }}\n\
         backends:\n  - {{ name: comfy-pool, endpoints: [{}]{timeouts} }}\n\
         models:\n  - {{ name: comfy, backend: comfy-pool }}\n\
         path_routes:\n  - {{ kind: comfyui, model: comfy }}\n",
        eps.join(", ")
    )
}

fn header(r: &Reply, name: &str) -> String {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// A one-sampler workflow that saves one image.
fn workflow(client: &str, steps: u32) -> String {
    serde_json::json!({
        "client_id": client,
        "prompt": {
            "3": {"class_type": "KSampler", "inputs": {"steps": steps, "seed": 1}},
            "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "e2e", "images": ["3", 0]}},
        }
    })
    .to_string()
}

/// Reads WebSocket messages until `executing` with `node: null` for `prompt_id`; returns the
/// message types seen for it.
async fn until_done(ws: &mut WsClient, prompt_id: &str) -> Vec<String> {
    let mut kinds = Vec::new();
    let read = async {
        while let Some(text) = ws.next_text().await.unwrap() {
            let m: serde_json::Value = serde_json::from_str(&text).unwrap();
            if m["data"]["prompt_id"] != prompt_id {
                continue;
            }
            let kind = m["type"].as_str().unwrap_or("").to_owned();
            let done = kind == "executing" && m["data"]["node"].is_null();
            kinds.push(kind);
            if done {
                return;
            }
        }
        panic!("the WebSocket closed before the prompt finished");
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("prompt finished");
    kinds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comfyui_job_stays_on_the_instance_that_took_its_prompt() {
    let a = comfy_sim().await;
    let b = comfy_sim().await;
    let gw = Gateway::start(&config(&[&a, &b], "")).await;

    // Find two clients pinned to different instances: the instance of each client's prompt.
    let mut by_instance: HashMap<String, String> = HashMap::new();
    let mut queue_calls = 0;
    for i in 0..64 {
        queue_calls += 1;
        let client = format!("user-{i}");
        let r = get_with(gw.data, &format!("/queue?clientId={client}"), &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        by_instance
            .entry(header(&r, "x-sim-instance"))
            .or_insert(client);
        if by_instance.len() == 2 {
            break;
        }
    }
    assert_eq!(by_instance.len(), 2, "clients spread over both instances");
    let mut jobs = Vec::new();
    for (instance, client) in by_instance {
        let gw_addr = gw.data;
        jobs.push(tokio::spawn(async move {
            let mut ws = WsClient::connect(gw_addr, &format!("/ws?clientId={client}"))
                .await
                .unwrap();
            // The socket greets its client with the queue status.
            let hello = ws.next_text().await.unwrap().unwrap();
            assert!(hello.contains("status"), "{hello}");
            let r = post(gw_addr, "/prompt", &workflow(&client, 5)).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body());
            assert_eq!(header(&r, "x-sim-instance"), instance);
            let prompt_id = r.json()["prompt_id"].as_str().unwrap().to_owned();
            let kinds = until_done(&mut ws, &prompt_id).await;
            assert!(
                kinds.iter().filter(|k| *k == "progress").count() == 5,
                "{kinds:?}"
            );
            assert!(kinds.contains(&"execution_success".to_owned()), "{kinds:?}");
            // The history by prompt id alone: the gateway remembered where the prompt went.
            let r = get(gw_addr, &format!("/history/{prompt_id}")).await;
            assert_eq!(header(&r, "x-sim-instance"), instance);
            let h = r.json();
            let images = h[&prompt_id]["outputs"]["9"]["images"].clone();
            let file = images[0]["filename"].as_str().expect("an image").to_owned();
            // The image, with the client id in the query.
            let r = get(
                gw_addr,
                &format!("/view?filename={file}&type=output&clientId={client}"),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(header(&r, "content-type"), "image/png");
            assert_eq!(header(&r, "x-sim-instance"), instance);
            // A clean close: the server's close frame answers ours.
            ws.close().await.unwrap();
            let drained = async { while ws.next_text().await.unwrap().is_some() {} };
            tokio::time::timeout(Duration::from_secs(5), drained)
                .await
                .expect("the server closes");
            instance
        }));
    }
    let mut served = Vec::new();
    for j in jobs {
        served.push(j.await.unwrap());
    }
    served.sort();
    let mut both = vec![a.addr.to_string(), b.addr.to_string()];
    both.sort();
    assert_eq!(served, both);

    // The two WebSocket sessions were requests of model comfy that ended well.
    wait_until(
        "WebSocket sessions recorded",
        Duration::from_secs(5),
        || async {
            let text = gw.metrics().await;
            let n = metric_sum(
                &text,
                "infergate_requests_total",
                &[("model", "comfy"), ("outcome", "success")],
            );
            // The /queue calls, then per client: its socket, prompt, history and image.
            n == f64::from(queue_calls + 8)
        },
    )
    .await;
    // Each tunnel held its client connection open until it ended, then let it go.
    wait_until("connections closed", Duration::from_secs(5), || async {
        metric_sum(
            &gw.metrics().await,
            "infergate_connections_open",
            &[("listener", "data")],
        ) == 0.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_websocket_ends_at_the_idle_timeout() {
    let a = comfy_sim().await;
    let log = temp_path("ws-access.jsonl");
    let text = config(&[&a], ", timeouts: { idle: 300ms }")
        + &format!(
            "access_log: {{ enabled: true, path: \"{}\" }}\n",
            log.display()
        );
    let gw = Gateway::start(&text).await;
    let mut ws = WsClient::connect(gw.data, "/ws?clientId=quiet")
        .await
        .unwrap();
    let hello = ws.next_text().await.unwrap().unwrap();
    assert!(hello.contains("status"), "{hello}");
    // Nothing more passes: the gateway closes the tunnel after the idle timeout.
    let started = std::time::Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(10), ws.next_text())
        .await
        .expect("the tunnel ends");
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    wait_until("the idle end recorded", Duration::from_secs(5), || async {
        let text = gw.metrics().await;
        metric_sum(
            &text,
            "infergate_requests_total",
            &[("model", "comfy"), ("outcome", "timeout_idle")],
        ) == 1.0
            && metric_sum(&text, "infergate_connections_open", &[("listener", "data")]) == 0.0
    })
    .await;
    // One access-log line: the upgrade's status, the session's outcome and the bytes sent.
    let line = wait_for("the access-log line", Duration::from_secs(5), || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines()
            .find(|l| l.contains("\"/ws\""))
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .ok_or_else(|| text.clone())
    })
    .await;
    assert_eq!(line["status"], 101, "{line}");
    assert_eq!(line["outcome"], "timeout_idle", "{line}");
    assert_eq!(line["model"], "comfy", "{line}");
    assert!(
        line["bytes_out"].as_u64().unwrap() > hello.len() as u64,
        "{line}"
    );
    let _ = std::fs::remove_file(&log);
}
