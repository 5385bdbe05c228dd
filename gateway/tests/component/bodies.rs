//! What the data listener answers to hostile request bodies and paths: one reading of `model`
//! (a second top-level `model` key is refused), and error messages that quote client input only
//! up to 256 characters.

use http::StatusCode;

use crate::common::*;

/// The longest error body a client can make the gateway send by sending long input.
const SMALL: usize = 1024;

async fn demo_gateway() -> infergate_gateway::Running {
    gateway(&config(&[closed_port_url()], "", "")).await
}

#[tokio::test]
async fn a_second_model_key_is_refused_and_counted_as_a_bad_request() {
    let gw = demo_gateway().await;
    for body in [
        r#"{"model":"demo","model":"nope","messages":[]}"#,
        r#"{"model":"demo","messages":[],"mod\u0065l":"demo"}"#,
    ] {
        let r = post(gw.data_addr, "/v1/chat/completions", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        let e = &r.json()["error"];
        assert_eq!(e["code"], "duplicate_model", "{body}");
        assert_eq!(e["type"], "invalid_request_error");
        assert_eq!(e["param"], "model");
        assert!(e["message"].as_str().unwrap().contains("\"model\""));
    }
    let bad = metric(
        gw.admin_addr,
        "infergate_requests_total",
        &[("outcome", "bad_request")],
    )
    .await;
    assert_eq!(bad, 2.0);
}

#[tokio::test]
async fn a_100_kb_model_name_is_quoted_cut() {
    let gw = demo_gateway().await;
    let name = "m".repeat(100_000);
    let body = format!(r#"{{"model":"{name}","messages":[]}}"#);
    let r = post(gw.data_addr, "/v1/chat/completions", &body).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body().len() < SMALL, "{} bytes", r.body().len());
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains(&"m".repeat(256)), "{message}");
    assert!(message.contains("…(cut, 100000 bytes)"), "{message}");
}

#[tokio::test]
async fn long_paths_and_parser_messages_are_quoted_cut() {
    let gw = demo_gateway().await;
    let path = format!("/{}", "p".repeat(50_000));
    let r = post(gw.data_addr, &path, "{}").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body().len() < SMALL, "{} bytes", r.body().len());
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("…(cut, 50001 bytes)"));

    // serde_json's message for a body that is a string quotes the string.
    let body = format!("\"{}\"", "s".repeat(100_000));
    let r = post(gw.data_addr, "/v1/chat/completions", &body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["code"], "invalid_json");
    assert!(r.body().len() < SMALL, "{} bytes", r.body().len());
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("…(cut, "));
}
