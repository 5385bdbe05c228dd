//! Load-testing tools for infergate.
//!
//! [`sim`] is an OpenAI-compatible model-server simulator that mimics vLLM's HTTP surface
//! (routes, JSON shapes, SSE framing, error bodies) with vLLM-like timing (random time to
//! first token and inter-token latency, prefill cost), a capacity model (running slots and a
//! waiting queue), vLLM's Prometheus metrics and faults on demand. Tests of other crates start
//! it in-process on port 0; the `infergate-sim` binary serves it from the command line.
//!
//! [`bench`] is `infergate-bench`, a load tester (open and closed loop, sweeps, TTFT, TPOT,
//! ITL, goodput, send lag; JSON, CSV and HTML reports) for the gateway or any
//! OpenAI-compatible server.

pub mod bench;
mod random;
pub mod sim;
