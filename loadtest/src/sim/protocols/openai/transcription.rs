//! `POST /v1/audio/transcriptions`: a multipart upload (`file`, `model`, optional
//! `response_format`) answered, after the simulated time, with `{"text", "usage"}` in
//! vLLM's shape (`usage`: `{"type":"duration","seconds"}`).

use http::{header, HeaderValue, Response};
use serde_json::json;

use crate::sim::body::SimBody;
use crate::sim::error::ApiError;
use crate::sim::reply;
use crate::sim::response::to_json;
use crate::sim::words::output_text;

use super::super::context::{Ctx, Failure, Input, MakeJob};
use super::super::reply::check_model;
use super::multipart;

/// Bytes per second of the audio the simulator assumes (16 kHz, 16-bit mono).
const BYTES_PER_SECOND: usize = 32_000;

fn field(parts: &[multipart::Part<'_>], name: &str) -> Option<String> {
    parts
        .iter()
        .find(|p| p.name == name)
        .map(|p| String::from_utf8_lossy(p.data).trim().to_owned())
}

/// `POST /v1/audio/transcriptions`.
pub async fn transcription(
    ctx: &Ctx<'_>,
    input: Input,
    make_job: MakeJob<'_>,
) -> Result<Response<SimBody>, Failure> {
    let content_type = input.content_type.as_deref().unwrap_or("");
    let boundary = multipart::boundary(content_type).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Expected a multipart/form-data body with a boundary, got content-type `{content_type}`."
        ))
    })?;
    let parts = multipart::parse(&input.body, &boundary)
        .map_err(|err| ApiError::bad_request(format!("Invalid multipart body: {err}.")))?;
    let model = field(&parts, "model")
        .ok_or_else(|| ApiError::bad_request("Invalid request body: missing field `model`"))?;
    check_model(ctx, &model)?;
    let file = parts
        .iter()
        .find(|p| p.name == "file")
        .ok_or_else(|| ApiError::bad_request("Invalid request body: missing field `file`"))?;
    let seconds = (file.data.len() / BYTES_PER_SECOND).max(1);
    let prompt_tokens = (file.data.len() / 1024).max(1) as u64;
    let tokens = ctx.default_max_tokens;
    let mut run = ctx.engine.submit(make_job(&[], prompt_tokens, tokens))?;
    if !run.complete().await {
        return Err(Failure::Abort);
    }
    let text = output_text(tokens).trim_start().to_owned();
    match field(&parts, "response_format").as_deref() {
        Some("text") => {
            let mut response = reply::json(bytes::Bytes::from(text));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            Ok(response)
        }
        None | Some("json" | "verbose_json") => Ok(reply::json(to_json(&json!({
            "text": text,
            "usage": {"type": "duration", "seconds": seconds},
        })))),
        Some(other) => Err(ApiError::bad_request(format!(
            "response_format `{other}` is not supported: use json, verbose_json or text."
        ))
        .into()),
    }
}
