#![allow(clippy::unwrap_used)]

use http::{HeaderMap, HeaderValue, Method};
use infergate_config::{PathKind, PathRoute};

use super::*;

fn routes() -> PathRoutes {
    PathRoutes::compile(
        &[
            PathRoute {
                prefix: Some("/sdapi/v1".into()),
                model: "sd".into(),
                kind: PathKind::Prefix,
            },
            PathRoute {
                prefix: None,
                model: "comfy".into(),
                kind: PathKind::Comfyui,
            },
        ],
        None,
    )
}

fn go(method: Method, path: &str, query: Option<&str>, headers: &HeaderMap) -> Dispatch {
    dispatch(&method, path, query, headers, &routes())
}

#[test]
fn openai_paths_are_routed_by_body_or_form() {
    let h = HeaderMap::new();
    for (path, metering) in [
        ("/v1/chat/completions", Metering::OpenAi),
        ("/v1/responses", Metering::Responses),
        ("/v1/rerank", Metering::OpenAi),
        ("/v1/score", Metering::OpenAi),
    ] {
        let Dispatch::Route(p) = go(Method::POST, path, None, &h) else {
            panic!("{path} not routed");
        };
        assert_eq!(
            (p.model, p.metering),
            (ModelFrom::JsonBody, metering),
            "{path}"
        );
    }
    let Dispatch::Route(p) = go(Method::POST, "/v1/audio/transcriptions", None, &h) else {
        panic!("transcriptions not routed");
    };
    assert_eq!(p.model, ModelFrom::Multipart);
    assert_eq!(
        go(Method::GET, "/v1/responses", None, &h),
        Dispatch::Refuse(Refusal::Method("POST"))
    );
    assert_eq!(
        go(Method::GET, "/v1/models", None, &h),
        Dispatch::ListModels
    );
    assert_eq!(
        go(Method::POST, "/v1/models", None, &h),
        Dispatch::Refuse(Refusal::Method("GET"))
    );
    assert_eq!(
        go(Method::POST, "/v1/images/generations", None, &h),
        Dispatch::Refuse(Refusal::NotFound)
    );
}

#[test]
fn path_protocols_name_their_model() {
    let h = HeaderMap::new();
    let named = |d: Dispatch| match d {
        Dispatch::Route(Plan {
            model: ModelFrom::Named(m),
            metering: Metering::Untokenized,
            ..
        }) => m.to_string(),
        other => format!("{other:?}"),
    };
    assert_eq!(
        named(go(
            Method::POST,
            "/v2/models/resnet/versions/2/infer",
            None,
            &h
        )),
        "resnet"
    );
    assert_eq!(
        named(go(Method::GET, "/v2/models/resnet/ready", None, &h)),
        "resnet"
    );
    assert_eq!(named(go(Method::POST, "/sdapi/v1/txt2img", None, &h)), "sd");
    assert_eq!(named(go(Method::GET, "/sdapi/v1/progress", None, &h)), "sd");
    assert_eq!(named(go(Method::GET, "/queue", None, &h)), "comfy");
    assert_eq!(
        go(Method::GET, "/sdapi/v2/txt2img", None, &h),
        Dispatch::Refuse(Refusal::NotFound)
    );
    // A path-route request is pinned only by the client-id header (not by its query).
    let Dispatch::Route(p) = go(Method::GET, "/sdapi/v1/progress", Some("clientId=q"), &h) else {
        panic!("not routed");
    };
    assert_eq!(p.pinned, None);
    let mut with_id = HeaderMap::new();
    with_id.insert(
        &comfyui::X_INFERGATE_CLIENT_ID,
        HeaderValue::from_static("u1"),
    );
    let Dispatch::Route(p) = go(Method::GET, "/sdapi/v1/progress", None, &with_id) else {
        panic!("not routed");
    };
    assert_eq!(p.pinned.unwrap().client_id.as_deref(), Some("u1"));
}

#[test]
fn comfyui_calls_carry_their_pins() {
    let mut h = HeaderMap::new();
    let comfy = |d: Dispatch| match d {
        Dispatch::Route(p) => (p.pinned.unwrap(), p.upgrade),
        other => panic!("{other:?}"),
    };
    let (c, up) = comfy(go(Method::POST, "/prompt", None, &h));
    assert_eq!(
        (c.kind, c.client_id, up),
        (comfyui::CallKind::Prompt, None, false)
    );
    let (c, _) = comfy(go(Method::GET, "/history/abc-1", None, &h));
    assert_eq!(c.kind, comfyui::CallKind::History);
    assert_eq!(c.prompt_id.as_deref(), Some("abc-1"));
    let (c, _) = comfy(go(
        Method::GET,
        "/view",
        Some("filename=a.png&client_id=u%201"),
        &h,
    ));
    assert_eq!(c.client_id.as_deref(), Some("u 1"));
    h.insert(
        &comfyui::X_INFERGATE_CLIENT_ID,
        HeaderValue::from_static("hdr"),
    );
    let (c, _) = comfy(go(Method::GET, "/view", Some("filename=a.png"), &h));
    assert_eq!(c.client_id.as_deref(), Some("hdr"));
    let mut ws = HeaderMap::new();
    ws.insert(
        "connection",
        HeaderValue::from_static("keep-alive, Upgrade"),
    );
    ws.insert("upgrade", HeaderValue::from_static("websocket"));
    let (c, up) = comfy(go(Method::GET, "/ws", Some("clientId=u2"), &ws));
    assert_eq!(
        (c.kind, c.client_id.as_deref(), up),
        (comfyui::CallKind::WebSocket, Some("u2"), true)
    );
    assert_eq!(
        go(Method::POST, "/ws", None, &ws),
        Dispatch::Refuse(Refusal::Method("GET"))
    );
}
