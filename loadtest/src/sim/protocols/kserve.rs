//! KServe v2 / Triton: health, metadata and an identity `infer` (each output echoes its
//! input) that takes the simulator's time to first token, like a prefill-only request.
//! Errors use KServe's shape, `{"error":"<message>"}`.

use http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::sim::body::SimBody;

use super::context::{Ctx, Failure, Input, MakeJob};
use super::reply::json;

/// The one version every model has.
const VERSION: &str = "1";

/// Tensor data types of the v2 protocol.
const DATATYPES: &[&str] = &[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16",
    "FP32", "FP64", "BYTES", "BF16",
];

fn error(ctx: &Ctx<'_>, status: StatusCode, message: String) -> Response<SimBody> {
    json(ctx, status, &json!({ "error": message }))
}

/// 404 unless `name` (at `version`, if given) is served.
fn find(ctx: &Ctx<'_>, name: &str, version: Option<&str>) -> Result<(), Box<Response<SimBody>>> {
    if !ctx.models.iter().any(|m| m == name) {
        return Err(Box::new(error(
            ctx,
            StatusCode::NOT_FOUND,
            format!("Request for unknown model: '{name}' is not found"),
        )));
    }
    match version {
        Some(v) if v != VERSION => Err(Box::new(error(
            ctx,
            StatusCode::NOT_FOUND,
            format!("Request for unknown model: '{name}' version {v} is not found"),
        ))),
        _ => Ok(()),
    }
}

/// `GET /v2/health/ready|live`: 200 empty, 503 while starting.
pub fn health(ctx: &Ctx<'_>, starting: bool) -> Response<SimBody> {
    if starting {
        return error(
            ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            "Server is starting".into(),
        );
    }
    super::reply::with_body(ctx, StatusCode::OK, "application/json", bytes::Bytes::new())
}

/// `GET /v2`: the server's metadata.
pub fn server(ctx: &Ctx<'_>) -> Response<SimBody> {
    json(
        ctx,
        StatusCode::OK,
        &json!({
            "name": "infergate-sim",
            "version": env!("CARGO_PKG_VERSION"),
            "extensions": [],
        }),
    )
}

/// `GET /v2/models/{name}[/versions/{v}]`: the model's metadata.
pub fn model(ctx: &Ctx<'_>, name: &str, version: Option<&str>) -> Response<SimBody> {
    if let Err(response) = find(ctx, name, version) {
        return *response;
    }
    json(
        ctx,
        StatusCode::OK,
        &json!({
            "name": name,
            "versions": [VERSION],
            "platform": "infergate-sim",
            "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [-1]}],
            "outputs": [{"name": "OUTPUT0", "datatype": "FP32", "shape": [-1]}],
        }),
    )
}

/// `GET /v2/models/{name}[/versions/{v}]/ready`: 200 empty, 404 unknown, 503 starting.
pub fn ready(
    ctx: &Ctx<'_>,
    name: &str,
    version: Option<&str>,
    starting: bool,
) -> Response<SimBody> {
    if let Err(response) = find(ctx, name, version) {
        return *response;
    }
    health(ctx, starting)
}

#[derive(Deserialize)]
struct InferBody {
    id: Option<String>,
    inputs: Vec<Tensor>,
    #[serde(default)]
    outputs: Vec<OutputRequest>,
}

#[derive(Deserialize)]
struct Tensor {
    name: String,
    shape: Vec<u64>,
    datatype: String,
    data: Value,
}

#[derive(Deserialize)]
struct OutputRequest {
    name: String,
}

/// Leaf values of `data`, nested arrays flattened.
fn flatten(data: Value, out: &mut Vec<Value>) {
    match data {
        Value::Array(items) => items.into_iter().for_each(|v| flatten(v, out)),
        leaf => out.push(leaf),
    }
}

/// `POST /v2/models/{name}[/versions/{v}]/infer`: validates the tensors, waits the time
/// to first token (prefill over one token per element), and answers the inputs as outputs.
pub async fn infer(
    ctx: &Ctx<'_>,
    name: &str,
    version: Option<&str>,
    input: Input,
    make_job: MakeJob<'_>,
) -> Result<Response<SimBody>, Failure> {
    if let Err(response) = find(ctx, name, version) {
        return Ok(*response);
    }
    let body: InferBody = match serde_json::from_slice(&input.body) {
        Ok(body) => body,
        Err(err) => {
            let message = format!("Invalid inference request body for model '{name}': {err}");
            return Ok(error(ctx, StatusCode::BAD_REQUEST, message));
        }
    };
    if body.inputs.is_empty() {
        let message = format!("Inference request for model '{name}' has no inputs");
        return Ok(error(ctx, StatusCode::BAD_REQUEST, message));
    }
    let mut outputs = Vec::with_capacity(body.inputs.len());
    let mut elements = 0u64;
    for (i, tensor) in body.inputs.into_iter().enumerate() {
        if !DATATYPES.contains(&tensor.datatype.as_str()) {
            let message = format!(
                "Input '{}' of model '{name}' has unknown datatype '{}'",
                tensor.name, tensor.datatype
            );
            return Ok(error(ctx, StatusCode::BAD_REQUEST, message));
        }
        let mut data = Vec::new();
        flatten(tensor.data, &mut data);
        let expected = tensor
            .shape
            .iter()
            .try_fold(1u64, |acc, d| acc.checked_mul(*d));
        if expected != Some(data.len() as u64) {
            let message = format!(
                "Input '{}' of model '{name}' has shape {:?} but {} data elements",
                tensor.name,
                tensor.shape,
                data.len()
            );
            return Ok(error(ctx, StatusCode::BAD_REQUEST, message));
        }
        elements = elements.saturating_add(data.len() as u64);
        let out_name = body
            .outputs
            .get(i)
            .map_or_else(|| format!("OUTPUT{i}"), |o| o.name.clone());
        outputs.push(json!({
            "name": out_name,
            "datatype": tensor.datatype,
            "shape": tensor.shape,
            "data": data,
        }));
    }
    let mut run = ctx.engine.submit(make_job(&[], elements.max(1), 0))?;
    if !run.complete().await {
        return Err(Failure::Abort);
    }
    let id = body
        .id
        .or(input.request_id)
        .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()));
    Ok(json(
        ctx,
        StatusCode::OK,
        &json!({
            "model_name": name,
            "model_version": version.unwrap_or(VERSION),
            "id": id,
            "parameters": {"instance": ctx.instance.to_str().unwrap_or_default()},
            "outputs": outputs,
        }),
    ))
}
