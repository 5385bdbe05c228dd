//! Routing and handlers: one request in, one response out.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use tokio::time::Instant;

use super::body::SimBody;
use super::config::SimConfig;
use super::embeddings::embed;
use super::error::ApiError;
use super::inflight::InFlight;
use super::request::{Api, EmbeddingRequest, Generation};
use super::response::{self, ChunkEncoder, Stamp, Usage};
use super::stream::{Schedule, TokenStream};

/// Largest request body accepted; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

const SERVED_VERSION: HeaderName = HeaderName::from_static("x-served-version");
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream; charset=utf-8");

/// What every connection of one simulator shares.
pub struct SimState {
    cfg: SimConfig,
    served_version: Option<HeaderValue>,
    /// `GET /v1/models` never changes, so it is rendered once.
    model_list: Bytes,
    requests: AtomicU64,
    streams: Arc<AtomicU64>,
}

impl SimState {
    /// Fails when `served_version` cannot be a header value.
    pub fn new(cfg: SimConfig) -> std::io::Result<Self> {
        let served_version = cfg
            .served_version
            .as_deref()
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|err| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("served_version is not a valid header value: {err}"),
                )
            })?;
        let model_list = response::model_list(&cfg.models, response::unix_now());
        Ok(Self {
            cfg,
            served_version,
            model_list,
            requests: AtomicU64::new(0),
            streams: Arc::default(),
        })
    }

    /// POST requests received on the inference routes, whatever their outcome.
    pub fn requests_received(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Streamed responses being generated now.
    pub fn active_streams(&self) -> u64 {
        self.streams.load(Ordering::Relaxed)
    }

    /// Answers one request. Never fails: every problem becomes an error response.
    pub async fn handle(&self, req: Request<Incoming>) -> Result<Response<SimBody>, Infallible> {
        let start = Instant::now();
        let mut response = match self.route(start, req).await {
            Ok(response) => response,
            Err(err) => err.into_response(),
        };
        if let Some(version) = &self.served_version {
            response
                .headers_mut()
                .insert(SERVED_VERSION, version.clone());
        }
        Ok(response)
    }

    async fn route(
        &self,
        start: Instant,
        req: Request<Incoming>,
    ) -> Result<Response<SimBody>, ApiError> {
        let api = match (req.method(), req.uri().path()) {
            (&Method::GET, "/v1/models") => return Ok(json(self.model_list.clone())),
            (&Method::GET, "/health") => return Ok(Response::new(SimBody::empty())),
            (&Method::POST, "/v1/chat/completions") => Some(Api::Chat),
            (&Method::POST, "/v1/completions") => Some(Api::Completion),
            (&Method::POST, "/v1/embeddings") => None,
            (method, path) => return Err(ApiError::unknown_route(method, path)),
        };
        self.requests.fetch_add(1, Ordering::Relaxed);
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_body(req).await?;
        match api {
            Some(api) => {
                let stamp = Stamp::new(api, self.cfg.deterministic, request_id.as_deref());
                self.generate(start, api, &body, stamp).await
            }
            None => self.embeddings(start, &body).await,
        }
    }

    fn check_model(&self, model: &str) -> Result<(), ApiError> {
        if self.cfg.models.iter().any(|m| m == model) {
            Ok(())
        } else {
            Err(ApiError::unknown_model(model))
        }
    }

    async fn generate(
        &self,
        start: Instant,
        api: Api,
        body: &[u8],
        stamp: Stamp,
    ) -> Result<Response<SimBody>, ApiError> {
        let generation = Generation::parse(api, body, self.cfg.default_max_tokens)?;
        self.check_model(&generation.model)?;
        let schedule = Schedule {
            start,
            ttft: self.cfg.ttft,
            itl: self.cfg.itl,
            tokens: generation.max_tokens,
        };
        if generation.stream {
            let usage = generation
                .include_usage
                .then(|| Usage::new(generation.prompt_tokens, generation.max_tokens));
            let encoder = ChunkEncoder::new(api, generation.model, stamp);
            let in_flight = InFlight::new(Arc::clone(&self.streams));
            let stream = TokenStream::new(encoder, schedule, usage, in_flight);
            let mut response = Response::new(SimBody::stream(stream));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, EVENT_STREAM);
            return Ok(response);
        }
        tokio::time::sleep_until(schedule.last_token_at()).await;
        Ok(json(response::completion(
            api,
            &generation.model,
            generation.prompt_tokens,
            generation.max_tokens,
            stamp,
        )))
    }

    async fn embeddings(&self, start: Instant, body: &[u8]) -> Result<Response<SimBody>, ApiError> {
        let req = EmbeddingRequest::parse(body)?;
        self.check_model(&req.model)?;
        let dims = self.cfg.embedding_dims;
        let vectors = req.inputs.iter().map(|text| embed(text, dims)).collect();
        let body = response::embeddings(&req.model, vectors, req.prompt_tokens());
        tokio::time::sleep_until(start.checked_add(self.cfg.ttft).unwrap_or(start)).await;
        Ok(json(body))
    }
}

/// A 200 response with a JSON body.
fn json(body: Bytes) -> Response<SimBody> {
    let mut response = Response::new(SimBody::full(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, APPLICATION_JSON);
    response
}

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`] with 413 (at once when
/// `content-length` already says so).
async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(ApiError::too_large(MAX_BODY_BYTES));
    }
    match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::too_large(MAX_BODY_BYTES))
        }
        Err(err) => Err(ApiError::bad_request(format!(
            "Failed to read the request body: {err}"
        ))),
    }
}
