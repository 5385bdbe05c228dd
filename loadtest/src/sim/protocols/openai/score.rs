//! `POST /v1/rerank` (Jina's and vLLM's shape) and `POST /v1/score` (vLLM's), answered
//! after the prefill of all texts. Scores are deterministic: `(1 + cos(a, b)) / 2` of the
//! simulator's fake embeddings, in `[0, 1]`.

use http::Response;
use serde::Deserialize;
use serde_json::json;

use crate::sim::body::SimBody;
use crate::sim::embeddings::embed;
use crate::sim::error::ApiError;
use crate::sim::reply;
use crate::sim::request::count_tokens;
use crate::sim::response::response_id;
use crate::sim::response::{to_json, unix_now};

use super::super::context::{Ctx, Failure, Input, MakeJob};
use super::super::reply::check_model;

/// Length of the vectors scores are computed from.
const DIMS: usize = 16;
/// Most texts one request may score.
const MAX_TEXTS: usize = 2048;

/// The relevance of `b` to `a`, in `[0, 1]`.
fn relevance(a: &str, b: &str) -> f64 {
    let dot: f32 = embed(a, DIMS)
        .iter()
        .zip(embed(b, DIMS))
        .map(|(x, y)| x * y)
        .sum();
    ((1.0 + f64::from(dot)) / 2.0).clamp(0.0, 1.0)
}

/// One string or a list of strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum Texts {
    One(String),
    Many(Vec<String>),
}

impl Texts {
    fn into_vec(self) -> Vec<String> {
        match self {
            Texts::One(text) => vec![text],
            Texts::Many(texts) => texts,
        }
    }
}

#[derive(Deserialize)]
struct RerankBody {
    model: String,
    query: String,
    documents: Vec<String>,
    #[serde(default)]
    top_n: usize,
}

/// Runs the texts' prefill through the engine.
async fn prefill(ctx: &Ctx<'_>, texts: &[String], make_job: MakeJob<'_>) -> Result<u64, Failure> {
    let tokens = count_tokens(texts.iter().map(String::as_str));
    let mut run = ctx.engine.submit(make_job(texts, tokens, 0))?;
    if !run.complete().await {
        return Err(Failure::Abort);
    }
    Ok(tokens)
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|err| ApiError::bad_request(format!("Invalid request body: {err}")))
}

/// `POST /v1/rerank`: the documents by relevance to the query, best first, `top_n` of them
/// (all when 0).
pub async fn rerank(
    ctx: &Ctx<'_>,
    input: Input,
    make_job: MakeJob<'_>,
) -> Result<Response<SimBody>, Failure> {
    let body: RerankBody = parse(&input.body)?;
    check_model(ctx, &body.model)?;
    if body.documents.is_empty() || body.documents.len() > MAX_TEXTS {
        return Err(ApiError::bad_request(format!(
            "documents must hold 1 to {MAX_TEXTS} items, not {}.",
            body.documents.len()
        ))
        .into());
    }
    let mut texts = vec![body.query.clone()];
    texts.extend(body.documents.iter().cloned());
    let tokens = prefill(ctx, &texts, make_job).await?;
    let mut results: Vec<(usize, f64)> = body
        .documents
        .iter()
        .map(|d| relevance(&body.query, d))
        .enumerate()
        .collect();
    results.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if body.top_n > 0 {
        results.truncate(body.top_n);
    }
    let results: Vec<_> = results
        .into_iter()
        .map(|(index, score)| {
            json!({
                "index": index,
                "document": {"text": body.documents.get(index)},
                "relevance_score": score,
            })
        })
        .collect();
    let id = response_id("rerank", ctx.deterministic, input.request_id.as_deref());
    Ok(reply::json(to_json(&json!({
        "id": id,
        "model": body.model,
        "usage": {"total_tokens": tokens},
        "results": results,
    }))))
}

#[derive(Deserialize)]
struct ScoreBody {
    model: String,
    #[serde(alias = "queries", alias = "data_1")]
    text_1: Texts,
    #[serde(alias = "documents", alias = "data_2")]
    text_2: Texts,
}

/// `POST /v1/score`: one `text_1` against each `text_2`, or lists of equal length pairwise.
pub async fn score(
    ctx: &Ctx<'_>,
    input: Input,
    make_job: MakeJob<'_>,
) -> Result<Response<SimBody>, Failure> {
    let body: ScoreBody = parse(&input.body)?;
    check_model(ctx, &body.model)?;
    let (left, right) = (body.text_1.into_vec(), body.text_2.into_vec());
    let pairs: Vec<(String, String)> = match (left.len(), right.len()) {
        (_, 0) | (0, _) => Vec::new(),
        (1, _) => right
            .iter()
            .map(|r| (left.first().cloned().unwrap_or_default(), r.clone()))
            .collect(),
        (l, r) if l == r => left.into_iter().zip(right).collect(),
        (l, r) => {
            return Err(ApiError::bad_request(format!(
                "text_1 ({l} items) and text_2 ({r} items) must be of equal length, or text_1 a single text."
            ))
            .into())
        }
    };
    if pairs.is_empty() || pairs.len() > MAX_TEXTS {
        return Err(ApiError::bad_request(format!(
            "text_1 and text_2 must make 1 to {MAX_TEXTS} pairs."
        ))
        .into());
    }
    let texts: Vec<String> = pairs
        .iter()
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect();
    let tokens = prefill(ctx, &texts, make_job).await?;
    let data: Vec<_> = pairs
        .iter()
        .enumerate()
        .map(|(index, (a, b))| json!({"index": index, "object": "score", "score": relevance(a, b)}))
        .collect();
    let id = response_id("score", ctx.deterministic, input.request_id.as_deref());
    Ok(reply::json(to_json(&json!({
        "id": id,
        "object": "list",
        "created": if ctx.deterministic { 1_700_000_000 } else { unix_now() },
        "model": body.model,
        "data": data,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0, "prompt_tokens_details": null},
    }))))
}
