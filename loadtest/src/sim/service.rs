//! Routing and handlers: one request in, one response out.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Method, Request, Response};
use hyper::body::Incoming;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::time::Instant;

use super::api::Api;
use super::body::SimBody;
use super::config::SimConfig;
use super::engine::{block_hashes, Cut, Engine, EngineConfig, Job, KvConfig};
use super::error::ApiError;
use super::fault::{self, Fault, FAULT_HEADER};
use super::handlers;
use super::metrics::{self, Metrics};
use super::protocols::{self, ComfyState, Ctx, Failure, Input, Route, SdState};
use super::reply::{self, event_stream, json};
use super::request::{read_body, EmbeddingRequest, Generation};
use super::response::{self, Stamp};
use super::timing::Latency;

/// Largest request body accepted; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

const SERVED_VERSION: HeaderName = HeaderName::from_static("x-served-version");

/// What every connection of one simulator shares.
pub struct SimState {
    cfg: SimConfig,
    served_version: Option<HeaderValue>,
    /// `GET /v1/models` never changes, so it is rendered once.
    model_list: Bytes,
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    /// Seed of the per-request random generators.
    seed: u64,
    /// Numbers inference requests in arrival order, for their random generators.
    sequence: AtomicU64,
    streams: Arc<AtomicU64>,
    /// Until then the simulated server is starting: `/health` and inference answer 503.
    ready_at: Instant,
    /// This instance's name (`x-sim-instance`).
    instance: HeaderValue,
    comfy: Arc<ComfyState>,
    sd: Arc<SdState>,
}

impl Drop for SimState {
    /// ComfyUI prompts run in their own tasks: they stop with the simulator.
    fn drop(&mut self) {
        self.comfy.abort_all();
    }
}

/// Which handler an inference request goes to.
enum Kind {
    Generate(Api),
    Embeddings,
    Protocol(Route),
}

/// The seed of request `n`'s generator.
fn request_seed(seed: u64, n: u64) -> u64 {
    seed.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn invalid_input(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, message)
}

impl SimState {
    /// Fails when `served_version` or `instance` cannot be a header value, `max_running`
    /// is 0 or the KV block size is 0. `addr` names the instance unless `cfg.instance` does.
    /// Must be called inside a tokio runtime; the startup period starts now.
    pub fn new(cfg: SimConfig, addr: std::net::SocketAddr) -> std::io::Result<Self> {
        let instance = cfg.instance.clone().unwrap_or_else(|| addr.to_string());
        let instance = HeaderValue::from_str(&instance).map_err(|err| {
            invalid_input(format!(
                "instance `{instance}` is not a valid header value: {err}"
            ))
        })?;
        let served_version = cfg
            .served_version
            .as_deref()
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|err| {
                invalid_input(format!("served_version is not a valid header value: {err}"))
            })?;
        let model_list = response::model_list(&cfg.models, response::unix_now());
        let label = cfg.models.first().map_or("", String::as_str);
        let metrics = Metrics::with_sets(label, cfg.kv_cache_tokens, cfg.metric_sets)
            .map_err(|err| invalid_input(format!("cannot create the metrics: {err}")))?;
        let metrics = Arc::new(metrics);
        let engine = Engine::new(
            EngineConfig {
                max_running: cfg.max_running,
                max_waiting: cfg.max_waiting,
                ttft: Latency::new(cfg.ttft, cfg.ttft_stddev),
                itl: Latency::new(cfg.itl, cfg.itl_stddev),
                prefill_per_1k_tokens: cfg.prefill_per_1k_tokens,
                kv: cfg.kv_model.map(|kv| KvConfig {
                    capacity_tokens: cfg.kv_cache_tokens,
                    block_size: kv.block_size,
                    prefix_caching: kv.prefix_caching,
                }),
            },
            Arc::clone(&metrics),
        )?;
        let now = Instant::now();
        Ok(Self {
            seed: cfg.seed.unwrap_or_else(rand::random),
            ready_at: now.checked_add(cfg.startup).unwrap_or(now),
            cfg,
            served_version,
            model_list,
            engine: Arc::new(engine),
            metrics,
            sequence: AtomicU64::new(0),
            streams: Arc::default(),
            instance,
            comfy: Arc::default(),
            sd: Arc::default(),
        })
    }

    /// POST requests received on the inference routes, whatever their outcome.
    pub fn requests_received(&self) -> u64 {
        self.metrics.requests_received()
    }

    /// Streamed responses being generated now.
    pub fn active_streams(&self) -> u64 {
        self.streams.load(Ordering::Relaxed)
    }

    /// Requests holding a running slot now.
    pub fn running(&self) -> u64 {
        u64::try_from(self.metrics.running.get()).unwrap_or(0)
    }

    /// Requests waiting for a running slot now.
    pub fn waiting(&self) -> u64 {
        u64::try_from(self.metrics.waiting.get()).unwrap_or(0)
    }

    /// The Prometheus text served on `GET /metrics`.
    pub fn metrics_text(&self) -> String {
        self.metrics.render()
    }

    /// Answers one request. Every problem becomes an error response, except a simulated
    /// connection drop, which is an error so that hyper aborts the connection.
    pub async fn handle(&self, req: Request<Incoming>) -> std::io::Result<Response<SimBody>> {
        let start = Instant::now();
        let mut response = match self.route(start, req).await {
            Ok(response) => response,
            Err(Failure::Api(err)) => reply::error(&err),
            Err(Failure::Abort) => return Err(super::stream::dropped()),
        };
        if let Some(version) = &self.served_version {
            response
                .headers_mut()
                .insert(SERVED_VERSION, version.clone());
        }
        Ok(response)
    }

    fn starting(&self) -> bool {
        Instant::now() < self.ready_at
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            models: &self.cfg.models,
            instance: &self.instance,
            engine: &self.engine,
            default_max_tokens: self.cfg.default_max_tokens,
            image_step: self.cfg.image_step,
            deterministic: self.cfg.deterministic,
            comfy: &self.comfy,
            sd: &self.sd,
            streams: &self.streams,
        }
    }

    async fn route(
        &self,
        start: Instant,
        req: Request<Incoming>,
    ) -> Result<Response<SimBody>, Failure> {
        let kind = match (req.method(), req.uri().path()) {
            (&Method::GET, "/v1/models") => return Ok(json(self.model_list.clone())),
            (&Method::GET, "/health") => {
                if self.starting() {
                    return Err(ApiError::starting_up().into());
                }
                return Ok(Response::new(SimBody::empty()));
            }
            (&Method::GET, "/metrics") => {
                let mut response = Response::new(SimBody::full(Bytes::from(self.metrics_text())));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(metrics::CONTENT_TYPE),
                );
                return Ok(response);
            }
            (&Method::POST, "/v1/chat/completions") => Kind::Generate(Api::Chat),
            (&Method::POST, "/v1/completions") => Kind::Generate(Api::Completion),
            (&Method::POST, "/v1/embeddings") => Kind::Embeddings,
            (method, path) => match Route::of(method, path) {
                Some(route) if route.is_inference() => Kind::Protocol(route),
                Some(route) => {
                    return Ok(protocols::serve_plain(
                        &self.ctx(),
                        route,
                        req,
                        self.starting(),
                    ))
                }
                None => return Err(ApiError::unknown_route(method, path).into()),
            },
        };
        self.metrics.request_received();
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        if self.starting() {
            return Err(ApiError::starting_up().into());
        }
        let header_fault = match req.headers().get(FAULT_HEADER) {
            None => None,
            Some(value) => {
                let text = value.to_str().map_err(|_| {
                    ApiError::bad_request(format!("The {FAULT_HEADER} header is not valid text."))
                })?;
                let parsed = fault::parse_header(text).map_err(|err| {
                    ApiError::bad_request(format!("Invalid {FAULT_HEADER} header: {err}"))
                })?;
                Some(parsed)
            }
        };
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_body(req, MAX_BODY_BYTES).await?;

        let mut rng = SmallRng::seed_from_u64(request_seed(self.seed, n));
        let fault = match header_fault {
            Some(fault) => fault,
            None => fault::draw(&self.cfg.faults, &mut rng),
        };
        let mut start = start;
        let cut = match fault {
            None => None,
            Some(Fault::Status(code)) => return Err(ApiError::fault(code).into()),
            Some(Fault::Hang) => {
                // Held until the client goes away (hyper then drops this future).
                let never: Infallible = std::future::pending().await;
                match never {}
            }
            Some(Fault::HangBody) => return Ok(event_stream(SimBody::never())),
            Some(Fault::Delay(delay)) => {
                tokio::time::sleep(delay).await;
                start = Instant::now();
                None
            }
            Some(Fault::StallAfter(after)) => Some(Cut { after, drop: false }),
            Some(Fault::DropAfter(after)) => Some(Cut { after, drop: true }),
        };
        let block_size = self.engine.block_size();
        let job = |texts: &[String], prompt_tokens, tokens| Job {
            arrival: start,
            prompt_tokens,
            tokens,
            cut,
            prefix_hashes: block_size
                .map(|size| block_hashes(texts.iter().map(String::as_str), size))
                .unwrap_or_default(),
            rng,
        };
        match kind {
            Kind::Generate(api) => {
                let stamp = Stamp::new(api, self.cfg.deterministic, request_id.as_deref());
                let generation = Generation::parse(api, &body, self.cfg.default_max_tokens)?;
                self.check_model(&generation.model)?;
                let job = job(
                    &generation.prompt_texts,
                    generation.prompt_tokens,
                    generation.max_tokens,
                );
                handlers::generate(&self.engine, &self.streams, api, generation, job, stamp).await
            }
            Kind::Protocol(route) => {
                let input = Input {
                    body,
                    content_type,
                    request_id,
                };
                protocols::serve(&self.ctx(), route, input, Box::new(job)).await
            }
            Kind::Embeddings => {
                let req = EmbeddingRequest::parse(&body)?;
                self.check_model(&req.model)?;
                let job = job(&req.inputs, req.prompt_tokens(), 0);
                handlers::embeddings(&self.engine, self.cfg.embedding_dims, req, job).await
            }
        }
    }

    fn check_model(&self, model: &str) -> Result<(), ApiError> {
        if self.cfg.models.iter().any(|m| m == model) {
            Ok(())
        } else {
            Err(ApiError::unknown_model(model))
        }
    }
}
