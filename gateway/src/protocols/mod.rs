//! The protocols the data listener speaks, told apart by method and path: where a request's
//! model comes from, whether it is pinned to one endpoint, and how its response is metered.
//!
//! | Paths | Model from | Metered |
//! |---|---|---|
//! | `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`, `/v1/rerank`, `/v1/score` | the JSON body's `model` | OpenAI `choices` deltas and `usage` |
//! | `POST /v1/responses` | the JSON body's `model` | Responses events ([`responses`]) |
//! | `POST /v1/audio/transcriptions`, `/v1/audio/translations` | the form's `model` field ([`multipart`]) | as chat |
//! | `/v2/models/{name}[/versions/{v}][/...]` (KServe v2, Triton) | `{name}` ([`kserve`]) | no tokens |
//! | a `path_routes` prefix (Stable Diffusion WebUI, others) | the route's `model` ([`paths`]) | no tokens |
//! | ComfyUI (`kind: comfyui`) | the route's `model`, pinned per client ([`comfyui`]) | no tokens |
//!
//! This module decides; the listener's dispatch (`server::dispatch`) turns refusals into error
//! responses and reads the body. It imports nothing of the data path's responses or bodies, so
//! the observers can use [`responses`] without a cycle.

pub mod comfyui;
pub mod kserve;
pub mod multipart;
pub mod paths;
pub mod pin;
pub mod responses;

use http::{HeaderMap, Method};

use self::comfyui::ComfyCall;
use self::paths::PathRoutes;

/// Where a request's model name is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelFrom {
    /// The JSON body's top-level `model`.
    JsonBody,
    /// The `model` field of a `multipart/form-data` body.
    Multipart,
    /// Named by the path (KServe v2) or by a path route.
    Named(Box<str>),
}

/// How a response is metered: which events are token events, and where `usage` is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Metering {
    /// OpenAI chat/completions streams (`choices[].delta`) and `usage`
    /// `{prompt_tokens, completion_tokens}`.
    #[default]
    OpenAi,
    /// OpenAI Responses: `response.*.delta` events, and `usage` `{input_tokens, output_tokens}`
    /// (in `response.completed` when streamed).
    Responses,
    /// The protocol carries no tokens: duration, outcome and bytes only.
    Untokenized,
}

/// What the gateway does with a request it routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub model: ModelFrom,
    pub metering: Metering,
    /// A request pinned to the endpoint of its client or prompt: ComfyUI's, or a path-route
    /// request with an `x-infergate-client-id` header.
    pub pinned: Option<ComfyCall>,
    /// An HTTP/1.1 WebSocket upgrade, passed through whole.
    pub upgrade: bool,
}

impl Plan {
    fn body(metering: Metering) -> Self {
        Plan {
            model: ModelFrom::JsonBody,
            metering,
            pinned: None,
            upgrade: false,
        }
    }

    fn named(model: &str) -> Self {
        Plan {
            model: ModelFrom::Named(model.into()),
            metering: Metering::Untokenized,
            pinned: None,
            upgrade: false,
        }
    }
}

/// Why a request is not routed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No route for this path.
    NotFound,
    /// The path exists with another method (the one it takes).
    Method(&'static str),
}

/// What to do with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// `GET /v1/models`: the configured models.
    ListModels,
    Route(Plan),
    Refuse(Refusal),
}

/// OpenAI paths routed by the JSON body's `model`, with their metering.
const OPENAI_JSON: [(&str, Metering); 6] = [
    ("/v1/chat/completions", Metering::OpenAi),
    ("/v1/completions", Metering::OpenAi),
    ("/v1/embeddings", Metering::OpenAi),
    ("/v1/responses", Metering::Responses),
    ("/v1/rerank", Metering::OpenAi),
    ("/v1/score", Metering::OpenAi),
];

/// OpenAI paths whose body is a form with a `model` field.
const OPENAI_FORM: [&str; 2] = ["/v1/audio/transcriptions", "/v1/audio/translations"];

/// Decides how a request with this method, path, query and headers is routed.
pub fn dispatch(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    routes: &PathRoutes,
) -> Dispatch {
    let post = |plan: Plan| {
        if method == Method::POST {
            Dispatch::Route(plan)
        } else {
            Dispatch::Refuse(Refusal::Method("POST"))
        }
    };
    if let Some((_, metering)) = OPENAI_JSON.iter().find(|(p, _)| *p == path) {
        return post(Plan::body(*metering));
    }
    if OPENAI_FORM.contains(&path) {
        return post(Plan {
            model: ModelFrom::Multipart,
            ..Plan::body(Metering::OpenAi)
        });
    }
    if path == "/v1/models" {
        return if method == Method::GET {
            Dispatch::ListModels
        } else {
            Dispatch::Refuse(Refusal::Method("GET"))
        };
    }
    if let Some(v2) = kserve::parse(path) {
        return Dispatch::Route(Plan::named(v2.model));
    }
    if let Some(model) = routes.prefix_model(path) {
        return Dispatch::Route(Plan {
            pinned: comfyui::header_client_id(headers).map(|c| ComfyCall {
                kind: comfyui::CallKind::Other,
                client_id: Some(c),
                prompt_id: None,
            }),
            ..Plan::named(model)
        });
    }
    if let Some(model) = routes.comfyui_model() {
        if let Some(call) = comfyui::classify(method, path, query, headers) {
            return match call {
                Ok(call) => Dispatch::Route(Plan {
                    upgrade: call.kind == comfyui::CallKind::WebSocket,
                    pinned: Some(call),
                    ..Plan::named(model)
                }),
                Err(r) => Dispatch::Refuse(r),
            };
        }
    }
    Dispatch::Refuse(Refusal::NotFound)
}

#[cfg(test)]
mod tests;
