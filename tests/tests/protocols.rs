//! Protocols beyond chat completions through the real gateway and simulators: KServe v2 routed by
//! path with a canary split, a multipart transcription routed by its form's model,
//! `/v1/responses` streamed with TTFT and tokens recorded, Stable Diffusion WebUI by prefix, and
//! `GET /v1/models`. ComfyUI is in `comfyui.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use infergate_e2e::*;

const FAST: [&str; 4] = ["--ttft-ms", "0", "--itl-ms", "1"];

async fn sim(models: &[&str]) -> Sim {
    let mut args: Vec<&str> = FAST.to_vec();
    for m in models {
        args.extend(["--model", m]);
    }
    Sim::start(&args).await
}

fn listeners() -> String {
    "listeners:\n  data: { address: \"127.0.0.1:0\" }\n  admin: { address: \"127.0.0.1:0\" }\n"
        .to_owned()
}

fn header(r: &Reply, name: &str) -> String {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kserve_v2_is_routed_by_path_with_a_canary_split() {
    let stable = sim(&["resnet"]).await;
    let canary = sim(&["resnet"]).await;
    let config = format!(
        "{}backends:\n  - {{ name: triton-a, endpoints: [{{ url: \"{}\" }}] }}\n  - {{ name: triton-b, endpoints: [{{ url: \"{}\" }}] }}\n\
         models:\n  - name: resnet\n    variants:\n      - {{ name: stable, backend: triton-a }}\n      - {{ name: canary, backend: triton-b }}\n\
         \x20   routes:\n      - split: [{{ variant: stable, weight: 70 }}, {{ variant: canary, weight: 30 }}]\n",
        listeners(),
        stable.url(),
        canary.url()
    );
    let gw = Gateway::start(&config).await;
    let infer = r#"{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1.0,2.0]}]}"#;
    let mut seen: HashMap<String, u32> = HashMap::new();
    let n = 200;
    let mut response_bytes = 0;
    for i in 0..n {
        let path = if i % 2 == 0 {
            "/v2/models/resnet/infer"
        } else {
            "/v2/models/resnet/versions/1/infer"
        };
        let r = post(gw.data, path, infer).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body());
        // The instance that answered belongs to the variant the gateway named.
        let want = match header(&r, "x-infergate-variant").as_str() {
            "stable" => stable.addr.to_string(),
            "canary" => canary.addr.to_string(),
            other => panic!("variant {other:?}"),
        };
        assert_eq!(header(&r, "x-sim-instance"), want);
        let out = r.json();
        assert_eq!(out["model_name"], "resnet", "{out}");
        *seen.entry(header(&r, "x-infergate-variant")).or_default() += 1;
        response_bytes += r.body().len();
    }
    let canary_share = f64::from(seen["canary"]) / f64::from(n);
    // 30 % of 200: a binomial standard deviation is 3.2 %; ±12 % is beyond 3.5 sigma.
    assert!((0.18..=0.42).contains(&canary_share), "{seen:?}");

    // Metadata and readiness are routed by the path too; an unknown model is 404.
    let r = get(gw.data, "/v2/models/resnet/ready").await;
    assert_eq!(r.status, StatusCode::OK);
    response_bytes += r.body().len();
    let r = get(gw.data, "/v2/models/resnet").await;
    assert_eq!(r.status, StatusCode::OK);
    response_bytes += r.body().len();
    assert_eq!(r.json()["name"], "resnet");
    let r = post(gw.data, "/v2/models/nope/infer", infer).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nope"));

    // Per-variant request metrics (a request is recorded as its body ends), no tokens.
    let ok = |text: &str, v: &str| {
        metric_sum(
            text,
            "infergate_requests_total",
            &[("model", "resnet"), ("variant", v), ("outcome", "success")],
        )
    };
    wait_until("every request recorded", Duration::from_secs(5), || async {
        let text = gw.metrics().await;
        ok(&text, "stable") + ok(&text, "canary") == f64::from(n + 2)
    })
    .await;
    let text = gw.metrics().await;
    assert!(ok(&text, "canary") >= f64::from(seen["canary"]));
    assert!(ok(&text, "canary") <= f64::from(seen["canary"] + 2));
    assert_eq!(
        metric_sum(
            &text,
            "infergate_output_tokens_total",
            &[("model", "resnet")]
        ),
        0.0
    );
    // Body bytes, both ways: every infer body went up, every answer came back.
    let bytes = |name: &str| metric_sum(&text, name, &[("model", "resnet")]);
    assert_eq!(
        bytes("infergate_request_bytes_total"),
        (infer.len() * n as usize) as f64
    );
    assert_eq!(
        bytes("infergate_response_bytes_total"),
        response_bytes as f64
    );
}

fn multipart(model: &str) -> (String, Vec<u8>) {
    let boundary = "e2e-boundary-7MA4YWxk";
    let audio: Vec<u8> = (0..64_000u32).map(|i| (i % 253) as u8).collect();
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(&audio);
    body.extend_from_slice(
        format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n{model}\r\n--{boundary}--\r\n").as_bytes(),
    );
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transcription_upload_is_routed_by_its_form_model() {
    let whisper = sim(&["whisper"]).await;
    let chat = sim(&["llama"]).await;
    let config = format!(
        "{}backends:\n  - {{ name: audio, endpoints: [{{ url: \"{}\" }}] }}\n  - {{ name: text, endpoints: [{{ url: \"{}\" }}] }}\n\
         models:\n  - {{ name: whisper, backend: audio }}\n  - {{ name: llama, backend: text }}\n",
        listeners(),
        whisper.url(),
        chat.url()
    );
    let gw = Gateway::start(&config).await;
    let upload = |model: &str| {
        let (ct, body) = multipart(model);
        Request::post(format!("http://{}/v1/audio/transcriptions", gw.data))
            .header("host", gw.data.to_string())
            .header("content-type", ct)
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let r = send(gw.data, upload("whisper"), false).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body());
    assert_eq!(header(&r, "x-infergate-variant"), "audio");
    assert!(r.json()["text"].is_string());
    let r = send(gw.data, upload("nope"), false).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A form without a model field.
    let req = Request::post(format!("http://{}/v1/audio/transcriptions", gw.data))
        .header("host", gw.data.to_string())
        .header("content-type", "multipart/form-data; boundary=x")
        .body(Full::new(Bytes::from_static(
            b"--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc\r\n--x--\r\n",
        )))
        .unwrap();
    let r = send(gw.data, req, false).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let text = gw.metrics().await;
    assert_eq!(
        metric_sum(
            &text,
            "infergate_requests_total",
            &[("model", "whisper"), ("outcome", "success")]
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_stream_records_ttft_and_tokens_and_models_are_listed_once() {
    let one = sim(&["llama", "sd", "sd-xl.safetensors"]).await;
    let two = sim(&["llama"]).await;
    let config = format!(
        "{}backends:\n  - {{ name: pool-a, endpoints: [{{ url: \"{}\" }}] }}\n  - {{ name: pool-b, endpoints: [{{ url: \"{}\" }}] }}\n\
         models:\n  - name: llama\n    variants:\n      - {{ name: a, backend: pool-a }}\n      - {{ name: b, backend: pool-b }}\n\
         \x20   routes:\n      - split: [{{ variant: a, weight: 1 }}, {{ variant: b, weight: 1 }}]\n\
         \x20 - {{ name: sd, backend: pool-a }}\n\
         path_routes:\n  - {{ prefix: /sdapi/v1, model: sd }}\n",
        listeners(),
        one.url(),
        two.url()
    );
    let gw = Gateway::start(&config).await;
    let body = r#"{"model":"llama","input":"hello there","max_output_tokens":6,"stream":true}"#;
    let r = post(gw.data, "/v1/responses", body).await;
    assert_eq!(r.status, StatusCode::OK);
    let events = r.events();
    let deltas = events
        .iter()
        .filter(|(_, e)| e.contains("\"response.output_text.delta\""))
        .count();
    assert_eq!(deltas, 6, "{events:?}");
    assert!(events.iter().any(|(_, e)| e.contains("response.completed")));
    let text = gw.metrics().await;
    assert_eq!(
        metric_sum(
            &text,
            "infergate_time_to_first_token_seconds_count",
            &[("model", "llama")]
        ),
        1.0
    );
    assert_eq!(
        metric_sum(
            &text,
            "infergate_output_tokens_total",
            &[("model", "llama")]
        ),
        6.0
    );
    assert!(metric_sum(&text, "infergate_input_tokens_total", &[("model", "llama")]) >= 1.0);
    // Not streamed: usage's input_tokens and output_tokens.
    let body = r#"{"model":"llama","input":"hi","max_output_tokens":3}"#;
    let r = post(gw.data, "/v1/responses", body).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["usage"]["output_tokens"], 3);
    let text = gw.metrics().await;
    assert_eq!(
        metric_sum(
            &text,
            "infergate_output_tokens_total",
            &[("model", "llama")]
        ),
        9.0
    );

    // Stable Diffusion WebUI by prefix: the body's checkpoint does not route.
    let r = post(
        gw.data,
        "/sdapi/v1/txt2img",
        r#"{"prompt":"a fox","steps":2,"override_settings":{"sd_model_checkpoint":"sd-xl.safetensors"}}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body());
    assert_eq!(header(&r, "x-infergate-variant"), "pool-a");
    let r = get(gw.data, "/sdapi/v1/progress").await;
    assert_eq!(r.status, StatusCode::OK);

    // Every configured model once, in the OpenAI list shape.
    let r = get(gw.data, "/v1/models").await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.json();
    assert_eq!(list["object"], "list");
    let mut ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["object"], "model");
            m["id"].as_str().unwrap()
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["llama", "sd"]);
    // Paths the gateway does not route.
    assert_eq!(
        get(gw.data, "/v2/health/ready").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(gw.data, "/v1/responses").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}
