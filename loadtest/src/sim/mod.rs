//! An OpenAI-compatible model-server simulator that behaves like vLLM on the wire.
//!
//! Start it in-process with [`Simulator::start`] (port 0 for tests), or run the
//! `infergate-sim` binary. It serves HTTP/1.1 and h2c (prior knowledge) on one port:
//!
//! | route                         | answer                                                   |
//! |-------------------------------|----------------------------------------------------------|
//! | `GET /v1/models`              | the configured models                                    |
//! | `GET /health`                 | 200, empty                                               |
//! | `POST /v1/chat/completions`   | `chat.completion`, or SSE `chat.completion.chunk`s       |
//! | `POST /v1/completions`        | `text_completion`, or SSE `text_completion` chunks       |
//! | `POST /v1/embeddings`         | unit vectors of `embedding_dims`, after `ttft`           |
//! | anything else                 | 404 in the OpenAI error shape                            |
//!
//! Generation always produces exactly the requested number of tokens (`max_completion_tokens`,
//! else `max_tokens`, else [`SimConfig::default_max_tokens`]), like vLLM with `ignore_eos`.
//! A stream sends, after `ttft`, the role chunk (chat only) and the first token, then one
//! token every `itl` on an absolute schedule; the last token carries
//! `finish_reason: "length"`, then come the usage chunk (with
//! `stream_options.include_usage`) and `data: [DONE]`. A non-streamed response is sent
//! when the last token would have been: after `ttft + (tokens - 1) * itl`.
//!
//! Prompt tokens are counted by a dummy tokenizer: whitespace-separated words across all
//! message contents, prompts or inputs, at least 1.
//!
//! Errors use vLLM's shape, `{"error":{"message","type","param","code"}}`: 404
//! `NotFoundError` for an unknown model (`The model `X` does not exist.`) or route, 400
//! `BadRequestError` for malformed JSON, missing fields or invalid values, 413 for bodies
//! over 16 MiB. When [`SimConfig::served_version`] is set, every response carries
//! `x-served-version`.

mod body;
mod config;
mod embeddings;
mod error;
mod inflight;
mod request;
mod response;
mod server;
mod service;
mod stream;
mod words;

pub use config::SimConfig;
pub use request::count_tokens;
pub use server::Simulator;
pub use words::token_text;
