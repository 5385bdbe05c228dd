//! Stable Diffusion WebUI's API: `txt2img` and `img2img` run one job at a time, one
//! sampling step per `image_step`, and answer base64 PNGs; `progress` reports the job
//! being sampled.

use std::sync::atomic::Ordering;

use http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::sim::body::SimBody;
use crate::sim::error::ApiError;
use crate::sim::ws::base64_encode;

use super::context::{Ctx, Failure, Input};
use super::image::PNG;
use super::reply::{check_model, json};
use super::sd_state::SdState;

/// Most sampling steps a request may ask for (WebUI's slider maximum).
const MAX_STEPS: u32 = 150;
/// Most images one request may ask for.
const MAX_IMAGES: u32 = 16;

/// Counts a job while it lives.
struct JobGuard<'a>(&'a SdState);

impl Drop for JobGuard<'_> {
    fn drop(&mut self) {
        self.0.jobs.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Clears the progress when the job being sampled ends, finished or dropped.
struct Sampling<'a>(&'a SdState);

impl Drop for Sampling<'_> {
    fn drop(&mut self) {
        self.0.set_progress(None);
    }
}

#[derive(Deserialize)]
struct Txt2Img {
    #[serde(default)]
    prompt: String,
    steps: Option<u32>,
    batch_size: Option<u32>,
    n_iter: Option<u32>,
    seed: Option<i64>,
    model: Option<String>,
    override_settings: Option<Overrides>,
    init_images: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Overrides {
    sd_model_checkpoint: Option<String>,
}

/// `POST /sdapi/v1/txt2img` (`img2img` = false) or `img2img`.
pub async fn generate(
    ctx: &Ctx<'_>,
    input: Input,
    img2img: bool,
) -> Result<Response<SimBody>, Failure> {
    let req: Txt2Img = serde_json::from_slice(&input.body)
        .map_err(|err| ApiError::bad_request(format!("Invalid request body: {err}")))?;
    let parameters: Value = serde_json::from_slice(&input.body).unwrap_or(Value::Null);
    let model = req
        .override_settings
        .and_then(|o| o.sd_model_checkpoint)
        .or(req.model);
    if let Some(model) = &model {
        check_model(ctx, model)?;
    }
    if img2img && req.init_images.as_ref().is_none_or(Vec::is_empty) {
        return Err(
            ApiError::bad_request("img2img needs at least one image in init_images.").into(),
        );
    }
    let steps = req.steps.unwrap_or(20);
    if !(1..=MAX_STEPS).contains(&steps) {
        return Err(
            ApiError::bad_request(format!("steps must be 1 to {MAX_STEPS}, not {steps}.")).into(),
        );
    }
    let images = req
        .batch_size
        .unwrap_or(1)
        .saturating_mul(req.n_iter.unwrap_or(1));
    if !(1..=MAX_IMAGES).contains(&images) {
        return Err(ApiError::bad_request(format!(
            "batch_size x n_iter must be 1 to {MAX_IMAGES}, not {images}."
        ))
        .into());
    }
    let state = ctx.sd.as_ref();
    state.jobs.fetch_add(1, Ordering::Relaxed);
    let _job = JobGuard(state);
    let _exec = state.exec.lock().await;
    let sampling = Sampling(state);
    for step in 0..steps {
        state.set_progress(Some((step, steps)));
        tokio::time::sleep(ctx.image_step).await;
    }
    drop(sampling);
    let image = base64_encode(PNG);
    let model_name = model.unwrap_or_else(|| ctx.models.first().cloned().unwrap_or_default());
    let info = json!({
        "prompt": req.prompt,
        "seed": req.seed.unwrap_or(-1),
        "steps": steps,
        "sd_model_name": model_name,
        "instance": ctx.instance.to_str().unwrap_or_default(),
    });
    Ok(json(
        ctx,
        StatusCode::OK,
        &json!({
            "images": vec![image; images as usize],
            "parameters": parameters,
            "info": info.to_string(),
        }),
    ))
}

/// `GET /sdapi/v1/progress`.
pub fn progress(ctx: &Ctx<'_>) -> Response<SimBody> {
    let state = ctx.sd.as_ref();
    let (done, total) = state.progress().unwrap_or((0, 0));
    let fraction = if total == 0 {
        0.0
    } else {
        f64::from(done) / f64::from(total)
    };
    let eta = ctx
        .image_step
        .saturating_mul(total.saturating_sub(done))
        .as_secs_f64();
    json(
        ctx,
        StatusCode::OK,
        &json!({
            "progress": fraction,
            "eta_relative": eta,
            "state": {
                "skipped": false,
                "interrupted": false,
                "job": if total == 0 { "" } else { "txt2img" },
                "job_count": state.jobs.load(Ordering::Relaxed),
                "job_timestamp": "0",
                "job_no": 0,
                "sampling_step": done,
                "sampling_steps": total,
            },
            "current_image": null,
            "textinfo": null,
        }),
    )
}
