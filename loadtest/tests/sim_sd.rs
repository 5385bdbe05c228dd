//! The simulator's Stable Diffusion WebUI routes over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use http::StatusCode;
use infergate_loadtest::sim::{SimConfig, INSTANCE_HEADER};
use serde_json::{json, Value};

/// Base64 of the PNG signature.
const PNG_B64: &str = "iVBORw0KGgo";

fn sd() -> SimConfig {
    SimConfig {
        models: vec!["v1-5-pruned.safetensors".into()],
        instance: Some("sd-1".into()),
        image_step: 20 * MS,
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn txt2img_samples_each_step_and_answers_base64_pngs() {
    let sim = start(sd()).await;
    let body = json!({"prompt": "a red fox", "steps": 5, "batch_size": 2, "seed": 42, "width": 64});
    let sent = Instant::now();
    let resp = post(&client(), sim.addr(), "/sdapi/v1/txt2img", &body, &[])
        .await
        .unwrap();
    assert_eq!(resp.headers()[INSTANCE_HEADER], "sd-1");
    let (status, v) = json_of(resp).await;
    let took = sent.elapsed();
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(took >= 100 * MS, "5 steps of 20 ms: {took:?}");
    let images = v["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert!(
        images
            .iter()
            .all(|i| i.as_str().unwrap().starts_with(PNG_B64)),
        "{v}"
    );
    assert_eq!(v["parameters"]["width"], 64);
    let info: Value = serde_json::from_str(v["info"].as_str().unwrap()).unwrap();
    assert_eq!(
        (&info["steps"], &info["seed"], &info["prompt"]),
        (&json!(5), &json!(42), &json!("a red fox"))
    );
    assert_eq!(info["sd_model_name"], "v1-5-pruned.safetensors");
}

#[tokio::test]
async fn progress_reports_the_job_being_sampled() {
    let sim = start(sd()).await;
    let addr = sim.addr();
    let (_, idle) = json_of(get(&client(), addr, "/sdapi/v1/progress").await).await;
    assert_eq!(idle["progress"], 0.0);
    assert_eq!(idle["state"]["job_count"], 0);
    let job = tokio::spawn(async move {
        let body = json!({"prompt": "x", "steps": 30});
        json_of(
            post(&client(), addr, "/sdapi/v1/txt2img", &body, &[])
                .await
                .unwrap(),
        )
        .await
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    let busy = loop {
        let (_, p) = json_of(get(&client(), addr, "/sdapi/v1/progress").await).await;
        if p["progress"].as_f64().unwrap() > 0.0 {
            break p;
        }
        assert!(Instant::now() < deadline, "no progress: {p}");
        tokio::time::sleep(5 * MS).await;
    };
    assert!(busy["progress"].as_f64().unwrap() < 1.0, "{busy}");
    assert_eq!(busy["state"]["sampling_steps"], 30);
    assert_eq!(busy["state"]["job_count"], 1);
    assert!(busy["eta_relative"].as_f64().unwrap() > 0.0, "{busy}");
    assert_eq!(job.await.unwrap().0, StatusCode::OK);
    let (_, done) = json_of(get(&client(), addr, "/sdapi/v1/progress").await).await;
    assert_eq!(
        (&done["progress"], &done["state"]["job_count"]),
        (&json!(0.0), &json!(0))
    );
}

#[tokio::test]
async fn img2img_needs_an_image_and_models_are_checked() {
    let sim = start(SimConfig {
        image_step: MS,
        ..sd()
    })
    .await;
    let addr = sim.addr();
    let client = client();
    let resp = post(
        &client,
        addr,
        "/sdapi/v1/img2img",
        &json!({"prompt": "x", "steps": 2}),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(error_of(resp, 400).await, "BadRequestError");
    let body = json!({"prompt": "x", "steps": 2, "init_images": [PNG_B64]});
    let (status, v) = json_of(
        post(&client, addr, "/sdapi/v1/img2img", &body, &[])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["images"].as_array().unwrap().len(), 1);
    let body =
        json!({"prompt": "x", "steps": 2, "override_settings": {"sd_model_checkpoint": "nope"}});
    let resp = post(&client, addr, "/sdapi/v1/txt2img", &body, &[])
        .await
        .unwrap();
    assert_eq!(
        error_of_model(resp).await,
        "The model `nope` does not exist."
    );
    let body = json!({"prompt": "x", "steps": 2, "override_settings": {"sd_model_checkpoint": "v1-5-pruned.safetensors"}});
    let resp = post(&client, addr, "/sdapi/v1/txt2img", &body, &[])
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    for bad in [
        json!({"steps": 0}),
        json!({"steps": 500}),
        json!({"batch_size": 0}),
        json!({"steps": "x"}),
    ] {
        let resp = post(&client, addr, "/sdapi/v1/txt2img", &bad, &[])
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

/// The message of a 404 for an unknown model.
async fn error_of_model(resp: http::Response<hyper::body::Incoming>) -> String {
    let (status, v) = json_of(resp).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["param"], "model");
    v["error"]["message"].as_str().unwrap().to_owned()
}
