//! The handlers of chat, completions and embeddings.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use http::Response;

use super::api::Api;
use super::body::SimBody;
use super::embeddings::embed;
use super::engine::{Engine, Job};
use super::inflight::InFlight;
use super::protocols::Failure;
use super::reply::{event_stream, json};
use super::request::{EmbeddingRequest, Generation};
use super::response::{self, ChunkEncoder, Stamp, Usage};
use super::stream::TokenStream;

/// Answers a chat or completion request: an event stream, or the whole response when its
/// last token is due.
pub async fn generate(
    engine: &Arc<Engine>,
    streams: &Arc<AtomicU64>,
    api: Api,
    generation: Generation,
    job: Job,
    stamp: Stamp,
) -> Result<Response<SimBody>, Failure> {
    let mut run = engine.submit(job)?;
    if generation.stream {
        let usage = generation
            .include_usage
            .then(|| Usage::new(generation.prompt_tokens, generation.max_tokens));
        let encoder = ChunkEncoder::new(api, generation.model, stamp);
        let in_flight = InFlight::new(Arc::clone(streams));
        let stream = TokenStream::new(encoder, run, usage, in_flight);
        return Ok(event_stream(SimBody::stream(stream)));
    }
    if !run.complete().await {
        return Err(Failure::Abort);
    }
    Ok(json(response::completion(
        api,
        &generation.model,
        generation.prompt_tokens,
        generation.max_tokens,
        stamp,
    )))
}

/// Answers an embeddings request after its prefill.
pub async fn embeddings(
    engine: &Arc<Engine>,
    dims: usize,
    req: EmbeddingRequest,
    job: Job,
) -> Result<Response<SimBody>, Failure> {
    let prompt_tokens = job.prompt_tokens;
    let mut run = engine.submit(job)?;
    let vectors = req.inputs.iter().map(|text| embed(text, dims)).collect();
    let body = response::embeddings(&req.model, vectors, prompt_tokens);
    if !run.complete().await {
        return Err(Failure::Abort);
    }
    Ok(json(body))
}
