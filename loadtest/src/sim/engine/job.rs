//! What a request asks of the engine, and what its run produces.

use rand::rngs::SmallRng;
use tokio::time::Instant;

/// Where a fault cuts a run short: after `after` tokens, stall (never produce anything
/// more) or drop (report [`Tick::Aborted`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cut {
    pub after: u32,
    pub drop: bool,
}

/// What a request asks of the engine.
pub struct Job {
    /// When the request arrived (TTFT and e2e latency are measured from here).
    pub arrival: Instant,
    pub prompt_tokens: u64,
    /// Output tokens; 0 for a prefill-only request (embeddings).
    pub tokens: u32,
    pub cut: Option<Cut>,
    /// Chained hashes of the prompt's full KV blocks (see [`super::block_hashes`]), the
    /// prefix-cache keys; empty without a KV model.
    pub prefix_hashes: Vec<u64>,
    /// The request's own random draws.
    pub rng: SmallRng,
}

/// What a [`Run`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tick {
    /// Output token `index` is due; `last` for the final one.
    Token { index: u32, last: bool },
    /// The run is complete (after the last token, or after prefill when it has none).
    Done,
    /// A `drop` cut: the response must be aborted.
    Aborted,
}
