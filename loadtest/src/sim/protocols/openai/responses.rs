//! `POST /v1/responses`: the Responses API, streamed as its SSE events or answered whole.

use http::{header, HeaderValue, Response};
use serde::Deserialize;

use crate::sim::body::SimBody;
use crate::sim::error::ApiError;
use crate::sim::inflight::InFlight;
use crate::sim::reply;
use crate::sim::request::count_tokens;
use crate::sim::response::response_id;
use crate::sim::response::{to_json, unix_now};
use crate::sim::words::output_text;

use super::super::context::{Ctx, Failure, Input, MakeJob};
use super::super::reply::check_model;
use super::response_shape::Shape;
use super::responses_stream::ResponsesStream;

/// Most output tokens one request may ask for.
const MAX_OUTPUT_TOKENS: u32 = 1 << 20;

#[derive(Deserialize)]
struct Body {
    model: String,
    input: Input0,
    instructions: Option<String>,
    max_output_tokens: Option<u32>,
    stream: Option<bool>,
}

/// `input`: a string, or a list of messages whose content is a string or a list of parts.
#[derive(Deserialize)]
#[serde(untagged)]
enum Input0 {
    Text(String),
    Items(Vec<Item>),
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(default)]
    text: Option<String>,
}

/// `POST /v1/responses`.
pub async fn responses(
    ctx: &Ctx<'_>,
    input: Input,
    make_job: MakeJob<'_>,
) -> Result<Response<SimBody>, Failure> {
    let body: Body = serde_json::from_slice(&input.body)
        .map_err(|err| ApiError::bad_request(format!("Invalid request body: {err}")))?;
    check_model(ctx, &body.model)?;
    let tokens = body.max_output_tokens.unwrap_or(ctx.default_max_tokens);
    if tokens == 0 || tokens > MAX_OUTPUT_TOKENS {
        return Err(ApiError::bad_request(format!(
            "max_output_tokens must be 1 to {MAX_OUTPUT_TOKENS}, not {tokens}."
        ))
        .into());
    }
    let mut texts: Vec<String> = body.instructions.into_iter().collect();
    match body.input {
        Input0::Text(text) => texts.push(text),
        Input0::Items(items) => {
            for content in items.into_iter().filter_map(|i| i.content) {
                match content {
                    Content::Text(text) => texts.push(text),
                    Content::Parts(parts) => texts.extend(parts.into_iter().filter_map(|p| p.text)),
                }
            }
        }
    }
    let input_tokens = count_tokens(texts.iter().map(String::as_str));
    let id = response_id("resp", ctx.deterministic, input.request_id.as_deref());
    let shape = Shape {
        item_id: format!("msg_{}", id.trim_start_matches("resp-")),
        id,
        model: body.model,
        created: if ctx.deterministic {
            1_700_000_000
        } else {
            unix_now()
        },
        input_tokens,
        output_tokens: tokens,
    };
    let mut run = ctx.engine.submit(make_job(&texts, input_tokens, tokens))?;
    if body.stream.unwrap_or(false) {
        let in_flight = InFlight::new(std::sync::Arc::clone(ctx.streams));
        let stream = ResponsesStream::new(shape, run, in_flight);
        let mut response = Response::new(SimBody::events(Box::new(stream)));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        return Ok(response);
    }
    if !run.complete().await {
        return Err(Failure::Abort);
    }
    Ok(reply::json(to_json(
        &shape.object(Some(&output_text(tokens))),
    )))
}
