//! `path_routes`: prefixes, ComfyUI's paths, and every problem reported with its path.
#![allow(clippy::unwrap_used)]

use infergate_config::{under_prefix, Config};

fn errors(routes: &str) -> Vec<String> {
    let yaml = format!(
        "listeners: {{ data: {{ address: '127.0.0.1:0' }}, admin: {{ address: '127.0.0.1:0' }} }}\n\
         backends: [{{ name: b, endpoints: [{{url: 'http://127.0.0.1:1'}}] }}]\n\
         models: [{{ name: sd, backend: b }}, {{ name: comfy, backend: b }}]\n\
         path_routes: {routes}\n"
    );
    match Config::from_yaml(&yaml) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn prefixes_match_on_segment_boundaries() {
    assert!(under_prefix("/sdapi/v1/txt2img", "/sdapi/v1"));
    assert!(under_prefix("/sdapi/v1", "/sdapi/v1/"));
    assert!(under_prefix("/sdapi/v1/", "/sdapi/v1"));
    assert!(!under_prefix("/sdapi/v10", "/sdapi/v1"));
    assert!(!under_prefix("/sdapi", "/sdapi/v1"));
}

#[test]
fn valid_routes_pass() {
    let e = errors("[{prefix: /sdapi/v1, model: sd}, {kind: comfyui, model: comfy}]");
    assert!(e.is_empty(), "{e:?}");
}

#[test]
fn unknown_models_and_bad_prefixes_are_named() {
    let e = errors("[{prefix: sdapi, model: sd}, {prefix: /x, model: nope}, {model: sd}]");
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(e[0].starts_with("path_routes[0].prefix: \"sdapi\" must start with /"));
    assert!(e[1].starts_with("path_routes[1].model: unknown model \"nope\" (known: comfy, sd)"));
    assert!(e[2].starts_with("path_routes[2].prefix: required"));
    let e = errors("[{prefix: '/', model: sd}]");
    assert!(e[0].contains("takes every path"), "{e:?}");
}

#[test]
fn overlaps_are_refused() {
    let e = errors("[{prefix: /sdapi, model: sd}, {prefix: /sdapi/v1/, model: comfy}]");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("path_routes[1]: path \"/sdapi/v1\" overlaps \"/sdapi\" of path_routes[0]"),
        "{e:?}"
    );
    let e = errors("[{prefix: /v1/images, model: sd}, {prefix: /v2, model: sd}]");
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].contains("overlaps \"/v1\", which the gateway routes itself"));
    assert!(e[1].contains("overlaps \"/v2/models\""));
    let e = errors("[{kind: comfyui, model: comfy}, {prefix: /history/x, model: sd}]");
    assert!(
        e[0].contains("overlaps \"/history\" of path_routes[0]"),
        "{e:?}"
    );
    let e = errors("[{kind: comfyui, model: comfy}, {kind: comfyui, model: sd}]");
    assert!(
        e[0].contains("path_routes[1].kind: a second comfyui route"),
        "{e:?}"
    );
    let e = errors("[{kind: comfyui, model: comfy, prefix: /c}]");
    assert!(e[0].contains("not allowed with kind: comfyui"), "{e:?}");
}
