//! The simulator's ComfyUI stub over HTTP and its WebSocket.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use http::{header, StatusCode};
use infergate_loadtest::sim::ws_client::WsClient;
use infergate_loadtest::sim::{SimConfig, INSTANCE_HEADER};
use serde_json::{json, Value};

fn comfy() -> SimConfig {
    SimConfig {
        models: vec!["sd-xl.safetensors".into()],
        instance: Some("comfy-1".into()),
        image_step: 10 * MS,
        ..SimConfig::default()
    }
}

/// A checkpoint loader, a sampler of `steps` and a SaveImage node.
fn workflow(steps: u64, ckpt: &str) -> Value {
    json!({
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "3": {"class_type": "KSampler", "inputs": {"steps": steps, "model": ["4", 0]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "test", "images": ["3", 0]}},
    })
}

async fn submit(addr: SocketAddr, prompt: Value, client_id: &str) -> (StatusCode, Value) {
    let body = json!({"prompt": prompt, "client_id": client_id});
    json_of(post(&client(), addr, "/prompt", &body, &[]).await.unwrap()).await
}

/// The next message, parsed; fails after 5 s.
async fn next(ws: &mut WsClient) -> Value {
    let text = tokio::time::timeout(Duration::from_secs(5), ws.next_text())
        .await
        .expect("a message within 5 s")
        .unwrap()
        .expect("the socket is open");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn a_prompt_runs_with_progress_on_its_clients_socket_then_history_and_view_serve_it() {
    let sim = start(comfy()).await;
    let addr = sim.addr();
    let mut ws = WsClient::connect(addr, "/ws?clientId=alice").await.unwrap();
    let hello = next(&mut ws).await;
    assert_eq!(hello["type"], "status");
    assert_eq!(hello["data"]["sid"], "alice");
    assert_eq!(hello["data"]["status"]["exec_info"]["queue_remaining"], 0);
    let mut bob = WsClient::connect(addr, "/ws?clientId=bob").await.unwrap();
    assert_eq!(next(&mut bob).await["type"], "status");

    let (status, v) = submit(addr, workflow(20, "sd-xl.safetensors"), "alice").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let prompt_id = v["prompt_id"].as_str().unwrap().to_owned();
    assert_eq!(prompt_id.len(), 36, "a UUID: {prompt_id}");
    assert_eq!(v["number"], 0);
    assert_eq!(v["node_errors"], json!({}));

    let mut kinds = Vec::new();
    let mut progress = Vec::new();
    let mut executed = None;
    let mut checked_history = false;
    loop {
        let m = next(&mut ws).await;
        let kind = m["type"].as_str().unwrap().to_owned();
        let data = &m["data"];
        if kind != "status" {
            assert_eq!(data["prompt_id"], prompt_id.as_str(), "{m}");
        }
        match kind.as_str() {
            "progress" => {
                progress.push(data["value"].as_u64().unwrap());
                assert_eq!(data["max"], 20);
                assert_eq!(data["node"], "3");
                if !checked_history {
                    // Unfinished: the history is still empty.
                    let (_, h) =
                        json_of(get(&client(), addr, &format!("/history/{prompt_id}")).await).await;
                    assert_eq!(h, json!({}));
                    checked_history = true;
                }
            }
            "executed" => executed = Some(data.clone()),
            "executing" if data["node"].is_null() => {
                kinds.push(kind);
                break;
            }
            _ => {}
        }
        kinds.push(kind);
    }
    assert_eq!(progress, (1..=20).collect::<Vec<_>>());
    let order: Vec<&str> = kinds
        .iter()
        .map(String::as_str)
        .filter(|k| *k != "progress" && *k != "status")
        .collect();
    assert_eq!(
        order,
        [
            "execution_start",
            "execution_cached",
            "executing",
            "executing",
            "executing",
            "executed",
            "execution_success",
            "executing"
        ]
    );
    let executed = executed.unwrap();
    assert_eq!(executed["node"], "9");
    let image = &executed["output"]["images"][0];
    let filename = image["filename"].as_str().unwrap().to_owned();
    assert!(
        filename.starts_with("test_") && filename.ends_with(".png"),
        "{filename}"
    );
    assert_eq!(
        (&image["subfolder"], &image["type"]),
        (&json!(""), &json!("output"))
    );

    // The history now holds the outputs, in ComfyUI's shape.
    let resp = get(&client(), addr, &format!("/history/{prompt_id}")).await;
    assert_eq!(resp.headers()[INSTANCE_HEADER], "comfy-1");
    let (_, h) = json_of(resp).await;
    let entry = &h[prompt_id.as_str()];
    assert_eq!(entry["outputs"]["9"]["images"][0], *image);
    assert_eq!(entry["status"]["completed"], true);
    assert_eq!(entry["status"]["status_str"], "success");
    assert_eq!(entry["prompt"][1], prompt_id.as_str());
    assert_eq!(entry["prompt"][3]["client_id"], "alice");
    let (_, all) = json_of(get(&client(), addr, "/history").await).await;
    assert!(all.get(prompt_id.as_str()).is_some());
    let (_, h) = json_of(get(&client(), addr, "/history/unknown").await).await;
    assert_eq!(h, json!({}));

    // /view serves the image this instance produced, and nothing else.
    let resp = get(
        &client(),
        addr,
        &format!("/view?filename={filename}&type=output&subfolder="),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "image/png");
    let png = text_bytes(resp).await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{png:?}");
    for path in [
        "/view?filename=other.png&type=output".to_owned(),
        format!("/view?filename={filename}&type=temp"),
    ] {
        let resp = get(&client(), addr, &path).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }

    // Bob saw only queue status changes, none of alice's execution.
    loop {
        match tokio::time::timeout(100 * MS, bob.next_text()).await {
            Ok(Ok(Some(text))) => {
                let m: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(m["type"], "status", "{m}");
            }
            Ok(other) => panic!("bob's socket ended: {other:?}"),
            Err(_) => break,
        }
    }
    ws.ping(b"hi").await.unwrap();
    ws.close().await.unwrap();
    assert_eq!(
        ws.next_text().await.unwrap(),
        None,
        "the server answers the close"
    );
}

async fn text_bytes(resp: http::Response<hyper::body::Incoming>) -> Vec<u8> {
    use http_body_util::BodyExt;
    resp.into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}

#[tokio::test]
async fn prompts_run_one_at_a_time_in_order() {
    let sim = start(comfy()).await;
    let addr = sim.addr();
    let mut ws = WsClient::connect(addr, "/ws?clientId=c").await.unwrap();
    let (_, first) = submit(addr, workflow(10, "sd-xl.safetensors"), "c").await;
    let (_, second) = submit(addr, workflow(2, "sd-xl.safetensors"), "c").await;
    assert_eq!(second["number"], 1);
    let (_, queue) = json_of(get(&client(), addr, "/queue").await).await;
    let running = queue["queue_running"].as_array().unwrap().len();
    let pending = queue["queue_pending"].as_array().unwrap().len();
    assert_eq!(running + pending, 2, "{queue}");
    assert!(pending >= 1, "{queue}");
    let mut events = Vec::new();
    while events.len() < 4 {
        let m = next(&mut ws).await;
        if m["type"] == "execution_start" || m["type"] == "execution_success" {
            events.push((
                m["type"].as_str().unwrap().to_owned(),
                m["data"]["prompt_id"].clone(),
            ));
        }
    }
    let (a, b) = (&first["prompt_id"], &second["prompt_id"]);
    assert_eq!(
        events,
        vec![
            ("execution_start".to_owned(), a.clone()),
            ("execution_success".to_owned(), a.clone()),
            ("execution_start".to_owned(), b.clone()),
            ("execution_success".to_owned(), b.clone()),
        ]
    );
}

#[tokio::test]
async fn bad_prompts_and_handshakes_are_refused() {
    let sim = start(comfy()).await;
    let addr = sim.addr();
    let (status, v) = submit(addr, workflow(2, "nope.ckpt"), "x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["type"], "prompt_outputs_failed_validation");
    assert_eq!(
        v["node_errors"]["4"]["errors"][0]["type"],
        "value_not_in_list"
    );
    let (status, v) = submit(
        addr,
        json!({"1": {"class_type": "KSampler", "inputs": {}}}),
        "x",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["type"], "prompt_no_outputs");
    let (status, v) = submit(addr, json!({"1": {"inputs": {}}}), "x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["type"], "invalid_prompt");
    let (status, _) = json_of(
        post(&client(), addr, "/prompt", &json!({"client_id": "x"}), &[])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A plain GET /ws is not a handshake.
    let resp = get(&client(), addr, "/ws?clientId=x").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let (_, queue) = json_of(get(&client(), addr, "/queue").await).await;
    assert_eq!(queue, json!({"queue_running": [], "queue_pending": []}));
}

#[tokio::test]
async fn dropping_the_simulator_stops_its_prompts_and_closes_its_sockets() {
    let sim = start(comfy()).await;
    let addr = sim.addr();
    let mut ws = WsClient::connect(addr, "/ws?clientId=z").await.unwrap();
    // 1000 steps of 10 ms: 10 s if nothing stops it.
    let (status, _) = submit(addr, workflow(1000, "sd-xl.safetensors"), "z").await;
    assert_eq!(status, StatusCode::OK);
    while next(&mut ws).await["type"] != "progress" {}
    drop(sim);
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match ws.next_text().await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the socket is still served after the simulator was dropped"
    );
}
