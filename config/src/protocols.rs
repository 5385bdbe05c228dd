//! Routes by path: traffic whose model comes from the request's path rather than from the body's
//! `model` (`path_routes`), and their validation.
//!
//! Built-in paths need no config: the OpenAI paths under `/v1/` are routed by the body's
//! `model`, and the KServe v2 paths `/v2/models/{name}/...` by the `{name}` in the path. A path
//! route names a model for every path under a prefix (Stable Diffusion WebUI's `/sdapi/v1/`,
//! any other API), or, with `kind: comfyui`, for ComfyUI's fixed paths (`/prompt`, `/history`,
//! `/view`, `/queue`, `/ws`), whose requests are pinned to one endpoint per client.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Prefixes the gateway serves itself; a path route may not take them or a path under them.
pub const RESERVED_PREFIXES: [&str; 2] = ["/v1", "/v2/models"];

/// ComfyUI's paths, taken by a `kind: comfyui` route.
pub const COMFYUI_PATHS: [&str; 5] = ["/prompt", "/history", "/view", "/queue", "/ws"];

/// How a path route's requests are sent.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PathKind {
    /// Every method and path under `prefix` goes to the model, path unchanged.
    #[default]
    Prefix,
    /// ComfyUI's paths (`/prompt`, `/history[/{id}]`, `/view`, `/queue`, `/ws`), with the
    /// requests of one client (its `client_id`) and of one prompt pinned to one endpoint.
    Comfyui,
}

/// A route by path: requests whose path is `prefix` or lies under it go to `model`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PathRoute {
    /// The path prefix, e.g. `/sdapi/v1`: it matches that path and every path under it
    /// (`/sdapi/v1/txt2img`), on `/` boundaries (`/sdapi/v10` does not match). Required with
    /// `kind: prefix`; not allowed with `kind: comfyui`, whose paths are fixed.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The model (a `models[].name`) that serves these paths: its variants, rules, canary
    /// splits, timeouts, retries and metrics apply.
    pub model: String,
    /// `prefix` (default) or `comfyui`.
    #[serde(default)]
    pub kind: PathKind,
}

/// Whether `path` is `prefix` or a path under it, on `/` boundaries.
pub fn under_prefix(path: &str, prefix: &str) -> bool {
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Problems of `path_routes`, each with its path in the config; `models` are the names of the
/// configured models, sorted.
pub(crate) fn validate_path_routes(
    routes: &[PathRoute],
    models: &[&str],
    push: &mut impl FnMut(String, String),
) {
    // (config path, prefix) of every prefix taken so far.
    let mut taken: Vec<(String, String)> = Vec::new();
    let mut comfy: Option<String> = None;
    for (i, r) in routes.iter().enumerate() {
        let path = format!("path_routes[{i}]");
        if models.binary_search(&r.model.as_str()).is_err() {
            let known = models;
            push(
                format!("{path}.model"),
                format!("unknown model {:?} (known: {})", r.model, known.join(", ")),
            );
        }
        let prefixes: Vec<String> = match (r.kind, &r.prefix) {
            (PathKind::Prefix, None) => {
                push(
                    format!("{path}.prefix"),
                    "required (the path prefix this route takes)".into(),
                );
                continue;
            }
            (PathKind::Prefix, Some(p)) => {
                if let Err(why) = check_prefix(p) {
                    push(format!("{path}.prefix"), format!("{p:?} {why}"));
                    continue;
                }
                vec![p.strip_suffix('/').unwrap_or(p).to_owned()]
            }
            (PathKind::Comfyui, Some(p)) => {
                push(
                    format!("{path}.prefix"),
                    format!(
                        "{p:?}: not allowed with kind: comfyui, whose paths are fixed ({})",
                        COMFYUI_PATHS.join(", ")
                    ),
                );
                continue;
            }
            (PathKind::Comfyui, None) => {
                if let Some(first) = &comfy {
                    push(
                        format!("{path}.kind"),
                        format!("a second comfyui route (the first is {first})"),
                    );
                    continue;
                }
                comfy = Some(path.clone());
                COMFYUI_PATHS.iter().map(|p| (*p).to_owned()).collect()
            }
        };
        for p in prefixes {
            if let Some(r) = RESERVED_PREFIXES
                .iter()
                .find(|r| under_prefix(&p, r) || under_prefix(r, &p))
            {
                push(
                    path.clone(),
                    format!("path {p:?} overlaps {r:?}, which the gateway routes itself"),
                );
                continue;
            }
            if let Some((other, q)) = taken
                .iter()
                .find(|(_, q)| under_prefix(&p, q) || under_prefix(q, &p))
            {
                push(
                    path.clone(),
                    format!("path {p:?} overlaps {q:?} of {other}: a path must have one route"),
                );
                continue;
            }
            taken.push((path.clone(), p));
        }
    }
}

/// Why a prefix is unusable.
fn check_prefix(p: &str) -> Result<(), &'static str> {
    if !p.starts_with('/') {
        return Err("must start with /");
    }
    if p.trim_end_matches('/').is_empty() {
        return Err("takes every path; name a prefix such as /sdapi/v1");
    }
    if p.contains(['?', '#', ' ', '*', '{', '}']) || p.contains("//") {
        return Err("must be a plain path (no query, fragment, wildcard or empty segment)");
    }
    if p.split('/').any(|s| s == "." || s == "..") {
        return Err("must not have . or .. segments");
    }
    Ok(())
}
