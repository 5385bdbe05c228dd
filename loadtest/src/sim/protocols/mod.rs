//! The protocols served beside chat, completions and embeddings: KServe v2 / Triton, a
//! ComfyUI-like stub (with its WebSocket), Stable Diffusion WebUI, and the other OpenAI
//! paths vLLM serves (`/v1/responses`, `/v1/audio/transcriptions`, `/v1/rerank`,
//! `/v1/score`).
//!
//! Every response of the KServe, ComfyUI and WebUI routes names the instance that served
//! it in `x-sim-instance`.

mod comfy;
mod context;
mod image;
mod kserve;
mod openai;
mod route;
mod sd;

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Response, StatusCode};
use serde_json::Value;

use super::body::SimBody;
use super::error::ApiError;
use super::response::to_json;

pub use comfy::ComfyState;
pub use context::{Ctx, Failure, Input};
pub use route::Route;
pub use sd::SdState;

/// The header naming the instance that served a request.
pub const INSTANCE_HEADER: HeaderName = HeaderName::from_static("x-sim-instance");

/// A JSON response with `status`, tagged with the instance.
fn json(ctx: &Ctx<'_>, status: StatusCode, value: &Value) -> Response<SimBody> {
    with_body(ctx, status, "application/json", to_json(value))
}

/// A response with `status`, a content type and a body, tagged with the instance.
fn with_body(
    ctx: &Ctx<'_>,
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<SimBody> {
    let mut response = Response::new(SimBody::full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(INSTANCE_HEADER, ctx.instance.clone());
    response
}

/// Whether `model` is served; the OpenAI-shaped 404 otherwise.
fn check_model(ctx: &Ctx<'_>, model: &str) -> Result<(), ApiError> {
    if ctx.models.iter().any(|m| m == model) {
        Ok(())
    } else {
        Err(ApiError::unknown_model(model))
    }
}

/// Answers a route that is not inference (health, metadata, history, queue, images, the
/// WebSocket, progress). `starting`: the simulated server is still starting.
pub fn serve_plain(
    ctx: &Ctx<'_>,
    route: Route,
    req: http::Request<hyper::body::Incoming>,
    starting: bool,
) -> Response<SimBody> {
    match route {
        Route::V2Health => kserve::health(ctx, starting),
        Route::V2Server => kserve::server(ctx),
        Route::V2Model { name, version } => kserve::model(ctx, &name, version.as_deref()),
        Route::V2ModelReady { name, version } => {
            kserve::ready(ctx, &name, version.as_deref(), starting)
        }
        Route::SdProgress => sd::progress(ctx),
        Route::ComfyHistory(id) => comfy::history(ctx, id.as_deref()),
        Route::ComfyView => comfy::view(ctx, req.uri().query()),
        Route::ComfyQueue => comfy::queue(ctx),
        Route::ComfyWs => comfy::upgrade(ctx, req),
        Route::V2Infer { .. }
        | Route::SdTxt2Img
        | Route::SdImg2Img
        | Route::ComfyPrompt
        | Route::Responses
        | Route::Transcriptions
        | Route::Rerank
        | Route::Score => json(
            ctx,
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({"error": "inference route served as a plain one"}),
        ),
    }
}

/// Answers an inference route, whose body was read and whose fault was drawn.
pub async fn serve(
    ctx: &Ctx<'_>,
    route: Route,
    input: Input,
    make_job: context::MakeJob<'_>,
) -> Result<Response<SimBody>, Failure> {
    match route {
        Route::V2Infer { name, version } => {
            kserve::infer(ctx, &name, version.as_deref(), input, make_job).await
        }
        Route::SdTxt2Img => sd::generate(ctx, input, false).await,
        Route::SdImg2Img => sd::generate(ctx, input, true).await,
        Route::ComfyPrompt => comfy::submit(ctx, &input),
        Route::Responses => openai::responses(ctx, input, make_job).await,
        Route::Transcriptions => openai::transcription(ctx, input, make_job).await,
        Route::Rerank => openai::rerank(ctx, input, make_job).await,
        Route::Score => openai::score(ctx, input, make_job).await,
        plain => Err(Failure::Api(ApiError::bad_request(format!(
            "{plain:?} is not an inference route"
        )))),
    }
}
