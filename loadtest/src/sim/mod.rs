//! An OpenAI-compatible model-server simulator that behaves like vLLM on the wire.
//!
//! Start it in-process with [`Simulator::start`] (port 0 for tests), or run the
//! `infergate-sim` binary. It serves HTTP/1.1 and h2c (prior knowledge) on one port:
//!
//! | route                         | answer                                                   |
//! |-------------------------------|----------------------------------------------------------|
//! | `GET /v1/models`              | the configured models                                    |
//! | `GET /health`                 | 200, empty (503 while starting, see [`SimConfig::startup`]) |
//! | `GET /metrics`                | vLLM's Prometheus metrics                                |
//! | `POST /v1/chat/completions`   | `chat.completion`, or SSE `chat.completion.chunk`s       |
//! | `POST /v1/completions`        | `text_completion`, or SSE `text_completion` chunks       |
//! | `POST /v1/embeddings`         | unit vectors of `embedding_dims`, after the TTFT         |
//! | `POST /v1/responses`, `/v1/audio/transcriptions`, `/v1/rerank`, `/v1/score` | the other OpenAI paths vLLM serves |
//! | `/v2/...`                     | KServe v2 / Triton: health, metadata, `infer`            |
//! | `/sdapi/v1/...`               | Stable Diffusion WebUI: `txt2img`, `img2img`, `progress` |
//! | `/prompt`, `/history`, `/view`, `/queue`, `/ws` | a ComfyUI-like stub with its WebSocket |
//! | anything else                 | 404 in the OpenAI error shape                            |
//!
//! Generation always produces exactly the requested number of tokens (`max_completion_tokens`,
//! else `max_tokens`, else [`SimConfig::default_max_tokens`]), like vLLM with `ignore_eos`.
//!
//! **Timing.** Each request draws its time to first token (normal around
//! [`SimConfig::ttft`] with [`SimConfig::ttft_stddev`], clamped to `[0.3, 1.7] x mean`, plus
//! [`SimConfig::prefill_per_1k_tokens`] per 1000 prompt tokens) and each inter-token gap
//! likewise; gaps add up on an absolute schedule, so a late reader does not shift later tokens.
//! A stream's head is sent at once; after the TTFT come the role chunk (chat only) and the first
//! token, then one token per gap; the last token carries `finish_reason: "length"`, then come
//! the usage chunk (with `stream_options.include_usage`) and `data: [DONE]`. A non-streamed
//! response is sent when the last token is due. [`SimConfig::seed`] makes the draws repeatable.
//!
//! **Capacity.** With [`SimConfig::max_running`], at most that many requests run at once; the
//! others wait in a FIFO queue (their TTFT clock starts when they get a slot) and, beyond
//! [`SimConfig::max_waiting`], are refused with 429. A client that goes away leaves the queue
//! or frees its slot.
//!
//! **KV cache.** With [`SimConfig::kv_model`], requests hold blocks of KV cache for their
//! prompt and generated tokens, wait when the cache is full, and the newest running request
//! is preempted (and later recomputed) when a running one needs a block and none is free.
//! Full prompt blocks are cached by hash with LRU eviction, and prefill covers only the
//! uncached tokens. See `loadtest/README.md`.
//!
//! **Faults.** [`SimConfig::faults`] (drawn per request) and the `x-sim-fault: SPEC` request
//! header (always applied, overriding them; `none` for no fault) inject a [`Fault`]:
//! `status=CODE`, `hang`, `hang-body`, `stall-after=N`, `drop-after=N` or `delay=MS`.
//!
//! **Metrics.** `GET /metrics` serves, from a registry owned by the simulator, vLLM's
//! `vllm:num_requests_running`, `vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc`,
//! `vllm:time_to_first_token_seconds`, `vllm:inter_token_latency_seconds`,
//! `vllm:e2e_request_latency_seconds`, `vllm:prompt_tokens_total`,
//! `vllm:generation_tokens_total`, `vllm:request_success_total{finished_reason}`,
//! `vllm:prefix_cache_queries_total`, `vllm:prefix_cache_hits_total` and
//! `vllm:num_preemptions_total` (labelled `model_name` = the first model, `engine="0"`), and
//! `infergate_sim_requests_received_total`; [`SimConfig::metric_sets`] can add or substitute
//! an older vLLM's `vllm:gpu_cache_usage_perc` and SGLang's names.
//!
//! **Other protocols.** KServe v2, ComfyUI and WebUI responses name the instance in
//! [`INSTANCE_HEADER`]; [`ws_client`] is a WebSocket client for tests of the ComfyUI stub.
//!
//! Prompt tokens are counted by a dummy tokenizer: whitespace-separated words across all
//! message contents, prompts or inputs, at least 1.
//!
//! Errors use vLLM's shape, `{"error":{"message","type","param","code"}}`: 404
//! `NotFoundError` for an unknown model (`The model `X` does not exist.`) or route, 400
//! `BadRequestError` for malformed JSON, missing fields or invalid values, 413 for bodies
//! over 16 MiB, 429 `RateLimitError` when the queue is full. When
//! [`SimConfig::served_version`] is set, every response carries `x-served-version`.

mod api;
mod body;
mod config;
mod embeddings;
mod engine;
mod error;
mod fault;
mod handlers;
mod inflight;
mod metrics;
mod protocols;
mod reply;
mod request;
mod response;
mod server;
mod service;
mod stream;
mod timing;
mod words;
mod ws;

pub use config::{
    KvModel, SimConfig, DEFAULT_BLOCK_SIZE, DEFAULT_KV_CACHE_TOKENS, DEFAULT_MAX_WAITING,
};
pub use fault::{Fault, FaultParseError, FaultRule, FAULT_HEADER};
pub use metrics::{MetricSets, MetricSetsParseError};
pub use protocols::INSTANCE_HEADER;
pub use request::count_tokens;
pub use server::Simulator;
pub use words::token_text;
pub use ws::client as ws_client;
