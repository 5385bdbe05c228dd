//! A ComfyUI-like stub: `POST /prompt` queues a workflow, which runs one at a time
//! (a `KSampler` node takes `steps` x `image_step`; each `SaveImage` / `PreviewImage` node
//! saves one PNG), while the submitting client's WebSocket (`/ws?clientId=`) receives
//! ComfyUI's messages; `/history/{prompt_id}` then holds the outputs, and `/view` serves
//! the images this instance produced.

mod job;
mod query;
mod ws;

use std::sync::Arc;

use http::{Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::sim::body::SimBody;

use crate::sim::error::ApiError;

use super::comfy_state::MAX_QUEUE;
use super::context::{Ctx, Failure, Input};
use super::image::PNG;
use super::reply::{json, with_body};

pub use ws::upgrade;

/// Class types whose nodes save images (the prompt's outputs).
const OUTPUT_CLASSES: &[&str] = &["SaveImage", "PreviewImage"];

/// ComfyUI's error body for a refused prompt.
fn refused(
    ctx: &Ctx<'_>,
    kind: &str,
    message: &str,
    details: String,
    node_errors: Value,
) -> Response<SimBody> {
    json(
        ctx,
        StatusCode::BAD_REQUEST,
        &json!({
            "error": {"type": kind, "message": message, "details": details, "extra_info": {}},
            "node_errors": node_errors,
        }),
    )
}

/// Checks the nodes of a prompt; the output node ids, or the refusal.
fn validate(
    ctx: &Ctx<'_>,
    prompt: &Map<String, Value>,
) -> Result<Vec<String>, Box<Response<SimBody>>> {
    let mut outputs = Vec::new();
    for (id, node) in prompt {
        let class = node.get("class_type").and_then(Value::as_str);
        let inputs = node.get("inputs").and_then(Value::as_object);
        let (Some(class), Some(inputs)) = (class, inputs) else {
            return Err(Box::new(refused(
                ctx,
                "invalid_prompt",
                "Cannot execute because a node is missing the class_type property or its inputs.",
                format!("Node ID '#{id}'"),
                json!({}),
            )));
        };
        if class.starts_with("CheckpointLoader") {
            let ckpt = inputs
                .get("ckpt_name")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !ctx.models.iter().any(|m| m == ckpt) {
                return Err(Box::new(refused(
                    ctx,
                    "prompt_outputs_failed_validation",
                    "Prompt outputs failed validation",
                    String::new(),
                    json!({ id.clone(): {
                        "errors": [{
                            "type": "value_not_in_list",
                            "message": "Value not in list",
                            "details": format!("ckpt_name: '{ckpt}' not in {:?}", ctx.models),
                            "extra_info": {"input_name": "ckpt_name"},
                        }],
                        "dependent_outputs": [],
                        "class_type": class,
                    }}),
                )));
            }
        }
        if OUTPUT_CLASSES.contains(&class) {
            outputs.push(id.clone());
        }
    }
    if outputs.is_empty() {
        return Err(Box::new(refused(
            ctx,
            "prompt_no_outputs",
            "Prompt has no outputs",
            String::new(),
            json!([]),
        )));
    }
    Ok(outputs)
}

/// `POST /prompt`: `{"prompt":{node_id:{"class_type","inputs"}},"client_id"}` →
/// `{"prompt_id","number","node_errors":{}}`; the prompt runs in the background.
pub fn submit(ctx: &Ctx<'_>, input: &Input) -> Result<Response<SimBody>, Failure> {
    let body: Value = serde_json::from_slice(&input.body)
        .map_err(|err| ApiError::bad_request(format!("Invalid request body: {err}")))?;
    let Some(prompt) = body.get("prompt").and_then(Value::as_object) else {
        return Ok(refused(
            ctx,
            "invalid_prompt",
            "Invalid prompt: `prompt` must be an object of nodes",
            String::new(),
            json!({}),
        ));
    };
    let outputs = match validate(ctx, prompt) {
        Ok(outputs) => outputs,
        Err(response) => return Ok(*response),
    };
    let client_id = body
        .get("client_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let Some(item) = ctx
        .comfy
        .submit(Value::Object(prompt.clone()), client_id, outputs)
    else {
        return Err(ApiError::overloaded(MAX_QUEUE).into());
    };
    let task = tokio::spawn(job::run(
        Arc::clone(ctx.comfy),
        item.clone(),
        ctx.image_step,
    ));
    ctx.comfy.track(task.abort_handle());
    Ok(json(
        ctx,
        StatusCode::OK,
        &json!({"prompt_id": item.prompt_id, "number": item.number, "node_errors": {}}),
    ))
}

/// `GET /history[/{prompt_id}]`.
pub fn history(ctx: &Ctx<'_>, prompt_id: Option<&str>) -> Response<SimBody> {
    json(ctx, StatusCode::OK, &ctx.comfy.history(prompt_id))
}

/// `GET /queue`.
pub fn queue(ctx: &Ctx<'_>) -> Response<SimBody> {
    json(ctx, StatusCode::OK, &ctx.comfy.queue())
}

/// `GET /view?filename=..&type=output[&subfolder=]`: the image, if this instance made it.
pub fn view(ctx: &Ctx<'_>, query: Option<&str>) -> Response<SimBody> {
    let query = query.unwrap_or("");
    let filename = query::param(query, "filename").unwrap_or_default();
    let kind = query::param(query, "type").unwrap_or_else(|| "output".to_owned());
    let subfolder = query::param(query, "subfolder").unwrap_or_default();
    if kind == "output" && subfolder.is_empty() && ctx.comfy.has_image(&filename) {
        return with_body(
            ctx,
            StatusCode::OK,
            "image/png",
            bytes::Bytes::from_static(PNG),
        );
    }
    with_body(
        ctx,
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        bytes::Bytes::from("404: Not Found"),
    )
}
