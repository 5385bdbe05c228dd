//! Which protocol route a method and path name.

use http::Method;

/// A route of [`super`]'s protocols.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /v2/health/ready` and `/v2/health/live`.
    V2Health,
    /// `GET /v2`: server metadata.
    V2Server,
    /// `GET /v2/models/{name}[/versions/{v}]`: model metadata.
    V2Model {
        name: String,
        version: Option<String>,
    },
    /// `GET /v2/models/{name}[/versions/{v}]/ready`.
    V2ModelReady {
        name: String,
        version: Option<String>,
    },
    /// `POST /v2/models/{name}[/versions/{v}]/infer`.
    V2Infer {
        name: String,
        version: Option<String>,
    },
    /// `POST /sdapi/v1/txt2img`.
    SdTxt2Img,
    /// `POST /sdapi/v1/img2img`.
    SdImg2Img,
    /// `GET /sdapi/v1/progress`.
    SdProgress,
    /// `POST /prompt`.
    ComfyPrompt,
    /// `GET /history` (everything) or `GET /history/{prompt_id}`.
    ComfyHistory(Option<String>),
    /// `GET /view?filename=..&type=output`.
    ComfyView,
    /// `GET /queue`.
    ComfyQueue,
    /// `GET /ws?clientId=..`: the WebSocket.
    ComfyWs,
    /// `POST /v1/responses`.
    Responses,
    /// `POST /v1/audio/transcriptions`.
    Transcriptions,
    /// `POST /v1/rerank` (also `/rerank` and `/v2/rerank`, as vLLM serves it).
    Rerank,
    /// `POST /v1/score` (also `/score`).
    Score,
}

/// `{name}` or `{name}/versions/{v}`, then `rest` (possibly empty), from the path after
/// `/v2/models/`.
fn model_path(after: &str) -> Option<(String, Option<String>, &str)> {
    let (name, rest) = after.split_once('/').unwrap_or((after, ""));
    if name.is_empty() {
        return None;
    }
    if let Some(versioned) = rest.strip_prefix("versions/") {
        let (version, rest) = versioned.split_once('/').unwrap_or((versioned, ""));
        if version.is_empty() {
            return None;
        }
        return Some((name.to_owned(), Some(version.to_owned()), rest));
    }
    Some((name.to_owned(), None, rest))
}

impl Route {
    /// The route of `method` and `path`, if any.
    pub fn of(method: &Method, path: &str) -> Option<Route> {
        let get = method == Method::GET;
        let post = method == Method::POST;
        let route = match path {
            "/v2/health/ready" | "/v2/health/live" if get => Route::V2Health,
            "/v2" if get => Route::V2Server,
            "/sdapi/v1/txt2img" if post => Route::SdTxt2Img,
            "/sdapi/v1/img2img" if post => Route::SdImg2Img,
            "/sdapi/v1/progress" if get => Route::SdProgress,
            "/prompt" if post => Route::ComfyPrompt,
            "/history" if get => Route::ComfyHistory(None),
            "/view" if get => Route::ComfyView,
            "/queue" if get => Route::ComfyQueue,
            "/ws" if get => Route::ComfyWs,
            "/v1/responses" if post => Route::Responses,
            "/v1/audio/transcriptions" if post => Route::Transcriptions,
            "/v1/rerank" | "/rerank" | "/v2/rerank" if post => Route::Rerank,
            "/v1/score" | "/score" if post => Route::Score,
            _ => {
                if let Some(id) = path.strip_prefix("/history/") {
                    return (get && !id.is_empty() && !id.contains('/'))
                        .then(|| Route::ComfyHistory(Some(id.to_owned())));
                }
                let (name, version, rest) = model_path(path.strip_prefix("/v2/models/")?)?;
                match rest {
                    "" if get => Route::V2Model { name, version },
                    "ready" if get => Route::V2ModelReady { name, version },
                    "infer" if post => Route::V2Infer { name, version },
                    _ => return None,
                }
            }
        };
        Some(route)
    }

    /// Whether the route runs inference: its body is read and it goes through the engine,
    /// the startup period and faults like the OpenAI routes.
    pub fn is_inference(&self) -> bool {
        matches!(
            self,
            Route::V2Infer { .. }
                | Route::SdTxt2Img
                | Route::SdImg2Img
                | Route::ComfyPrompt
                | Route::Responses
                | Route::Transcriptions
                | Route::Rerank
                | Route::Score
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_routes() {
        let v = |name: &str, version: Option<&str>| (name.to_owned(), version.map(str::to_owned));
        assert_eq!(
            Route::of(&Method::POST, "/v2/models/m/versions/3/infer"),
            Some(Route::V2Infer {
                name: v("m", Some("3")).0,
                version: v("m", Some("3")).1
            })
        );
        assert_eq!(
            Route::of(&Method::GET, "/v2/models/m"),
            Some(Route::V2Model {
                name: "m".into(),
                version: None
            })
        );
        assert_eq!(
            Route::of(&Method::GET, "/v2/models/m/ready"),
            Some(Route::V2ModelReady {
                name: "m".into(),
                version: None
            })
        );
        assert_eq!(Route::of(&Method::GET, "/v2/models/m/infer"), None);
        assert_eq!(Route::of(&Method::GET, "/v2/models//ready"), None);
        assert_eq!(Route::of(&Method::GET, "/v2/models/m/versions/"), None);
        assert_eq!(
            Route::of(&Method::GET, "/history/abc"),
            Some(Route::ComfyHistory(Some("abc".into())))
        );
        assert_eq!(Route::of(&Method::GET, "/history/a/b"), None);
        assert_eq!(Route::of(&Method::GET, "/prompt"), None);
        assert_eq!(Route::of(&Method::POST, "/rerank"), Some(Route::Rerank));
        assert!(Route::of(&Method::POST, "/v1/score").is_some_and(|r| r.is_inference()));
        assert!(!Route::ComfyWs.is_inference());
    }
}
