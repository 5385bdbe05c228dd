//! The protocols served beside chat, completions and embeddings: KServe v2 / Triton, a
//! ComfyUI-like stub (with its WebSocket), Stable Diffusion WebUI, and the other OpenAI
//! paths vLLM serves (`/v1/responses`, `/v1/audio/transcriptions`, `/v1/rerank`,
//! `/v1/score`).
//!
//! Every response of the KServe, ComfyUI and WebUI routes names the instance that served
//! it in `x-sim-instance`.

mod comfy;
mod comfy_state;
mod context;
mod image;
mod kserve;
mod openai;
mod reply;
mod route;
mod sd;
mod sd_state;

use http::{Response, StatusCode};

use super::body::SimBody;
use super::error::ApiError;

pub use comfy_state::ComfyState;
pub use context::{Ctx, Failure, Input};
pub use reply::INSTANCE_HEADER;
pub use route::Route;
pub use sd_state::SdState;

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
        | Route::Score => reply::json(
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
