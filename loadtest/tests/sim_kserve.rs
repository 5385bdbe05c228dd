//! The simulator's KServe v2 / Triton routes over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use http::StatusCode;
use infergate_loadtest::sim::{SimConfig, INSTANCE_HEADER};
use serde_json::json;

fn named(instance: &str) -> SimConfig {
    SimConfig {
        models: vec!["resnet".into()],
        instance: Some(instance.into()),
        ttft: 100 * MS,
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn health_metadata_and_readiness() {
    let sim = start(named("inst-a")).await;
    let client = client();
    let addr = sim.addr();
    for path in [
        "/v2/health/ready",
        "/v2/health/live",
        "/v2/models/resnet/ready",
        "/v2/models/resnet/versions/1/ready",
    ] {
        let resp = get(&client, addr, path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(resp.headers()[INSTANCE_HEADER], "inst-a", "{path}");
    }
    let (status, v) = json_of(get(&client, addr, "/v2/models/resnet").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["name"], "resnet");
    assert_eq!(v["versions"], json!(["1"]));
    assert!(v["inputs"].is_array() && v["outputs"].is_array(), "{v}");
    let (status, v) = json_of(get(&client, addr, "/v2/models/resnet/versions/1").await).await;
    assert_eq!((status, &v["name"]), (StatusCode::OK, &json!("resnet")));
    let (status, v) = json_of(get(&client, addr, "/v2").await).await;
    assert_eq!(
        (status, &v["name"]),
        (StatusCode::OK, &json!("infergate-sim"))
    );
    for path in [
        "/v2/models/nope",
        "/v2/models/nope/ready",
        "/v2/models/resnet/versions/2/ready",
    ] {
        let (status, v) = json_of(get(&client, addr, path).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            v["error"].as_str().unwrap().contains("unknown model"),
            "{v}"
        );
    }
}

#[tokio::test]
async fn readiness_is_503_while_starting() {
    let sim = start(SimConfig {
        startup: Duration::from_secs(30),
        ..named("slow")
    })
    .await;
    let resp = get(&client(), sim.addr(), "/v2/health/ready").await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let resp = get(&client(), sim.addr(), "/v2/models/resnet/ready").await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn infer_echoes_its_inputs_after_the_ttft_and_names_the_instance() {
    let sim = start(named("inst-b")).await;
    let client = client();
    let body = json!({
        "id": "req-7",
        "inputs": [
            {"name": "INPUT0", "shape": [2, 2], "datatype": "FP32", "data": [[1.5, 2], [3, 4]]},
            {"name": "INPUT1", "shape": [1], "datatype": "BYTES", "data": ["cat"]},
        ],
        "outputs": [{"name": "probs"}],
    });
    for path in [
        "/v2/models/resnet/infer",
        "/v2/models/resnet/versions/1/infer",
    ] {
        let sent = Instant::now();
        let resp = post(&client, sim.addr(), path, &body, &[]).await.unwrap();
        assert_eq!(resp.headers()[INSTANCE_HEADER], "inst-b");
        let (status, v) = json_of(resp).await;
        assert!(
            sent.elapsed() >= 100 * MS,
            "the time to first token applies"
        );
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["model_name"], "resnet");
        assert_eq!(v["model_version"], "1");
        assert_eq!(v["id"], "req-7");
        assert_eq!(v["parameters"]["instance"], "inst-b");
        assert_eq!(
            v["outputs"],
            json!([
                {"name": "probs", "datatype": "FP32", "shape": [2, 2], "data": [1.5, 2, 3, 4]},
                {"name": "OUTPUT1", "datatype": "BYTES", "shape": [1], "data": ["cat"]},
            ])
        );
    }
    assert_eq!(sim.requests_received(), 2);
}

#[tokio::test]
async fn infer_refuses_unknown_models_and_bad_tensors() {
    let sim = start(SimConfig {
        ttft: MS,
        ..named("inst-c")
    })
    .await;
    let client = client();
    let addr = sim.addr();
    let ok = json!({"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1]}]});
    let resp = post(&client, addr, "/v2/models/nope/infer", &ok, &[])
        .await
        .unwrap();
    let (status, v) = json_of(resp).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"], "Request for unknown model: 'nope' is not found");
    let resp = post(
        &client,
        addr,
        "/v2/models/resnet/versions/9/infer",
        &ok,
        &[],
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    for bad in [
        json!({"inputs": []}),
        json!({"inputs": [{"name": "x", "shape": [3], "datatype": "INT32", "data": [1, 2]}]}),
        json!({"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1]}]}),
        json!({"inputs": [{"name": "x", "shape": [1]}]}),
    ] {
        let resp = post(&client, addr, "/v2/models/resnet/infer", &bad, &[])
            .await
            .unwrap();
        let (status, v) = json_of(resp).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} -> {v}");
        assert!(v["error"].as_str().unwrap().contains("resnet"), "{v}");
    }
    // Faults apply as to the OpenAI routes.
    let resp = post(
        &client,
        addr,
        "/v2/models/resnet/infer",
        &ok,
        &[("x-sim-fault", "status=503")],
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn the_default_instance_name_is_the_bound_address() {
    let sim = start(SimConfig {
        models: vec!["resnet".into()],
        ..SimConfig::default()
    })
    .await;
    let resp = get(&client(), sim.addr(), "/v2/models/resnet").await;
    assert_eq!(
        resp.headers()[INSTANCE_HEADER],
        sim.addr().to_string().as_str()
    );
}
