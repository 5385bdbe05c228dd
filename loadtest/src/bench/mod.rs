//! `infergate-bench`: a load tester for OpenAI-compatible LLM servers (the gateway, vLLM,
//! or [`crate::sim`]).
//!
//! Every request is streamed (`stream: true`, `stream_options.include_usage: true`) and
//! measured with the definitions of `docs/metrics.md`, shared with the gateway:
//!
//! - **TTFT**: from sending the request to the first SSE event carrying a non-empty token
//!   delta (the role-only chunk and the usage chunk do not count);
//! - **TPOT**: per request with at least 2 output tokens, `(last token event − first token
//!   event) / (output tokens − 1)`; it excludes the first token and is request-weighted;
//! - **ITL**: every gap between successive token events, pooled over requests;
//! - **E2E**: from sending the request to the end of the response;
//! - **output tokens**: `usage.completion_tokens` when reported, else token events; input
//!   tokens: `usage.prompt_tokens`.
//!
//! Load is open loop ([`runner::Load::Rate`]: Poisson or evenly spaced arrivals scheduled at
//! absolute times, one task per request, scheduled and actual send times recorded) or closed
//! loop ([`runner::Load::Concurrency`]). A run is one load or a sweep of several (one step
//! each). Results: a text summary per step on stdout, a JSON document
//! ([`output::Document`], `docs/bench.schema.json`), a CSV of the records and a
//! self-contained HTML report; `compare` sets several runs side by side.
//!
//! The usage and the file formats are documented in `docs/bench.md`.

pub mod cli;
pub mod client;
pub mod compare;
pub mod live;
mod messages;
pub mod output;
pub mod progress;
pub mod record;
pub mod report;
pub mod runner;
pub mod spec;
pub mod stats;
mod target;
pub mod workload;
