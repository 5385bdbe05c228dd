//! The wire formats spoken between infergate's parts, each defined once:
//!
//! - [`sse`]: incremental reading of OpenAI-style SSE streams (token events, usage, errors):
//!   the one implementation of the TTFT/TPOT definitions, used by the gateway's observer and by
//!   the load tester.
//! - [`feed`]: the health-feed document that `infergate-control` serves on `GET /v1/health`
//!   and the gateway reads.
//! - [`openai`]: the OpenAI error body, `{"error":{...}}`, as a JSON response body and as the
//!   SSE error event that ends a failed stream.
//! - [`time`]: RFC 3339 UTC timestamps of the access log and the load tester's output.

pub mod feed;
mod object;
pub mod openai;
pub mod sse;
pub mod time;
