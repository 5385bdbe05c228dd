//! Simulator settings.

use std::time::Duration;

/// How the simulator behaves. Every model in `models` behaves the same way.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Model names served; a request for any other name gets vLLM's 404.
    pub models: Vec<String>,
    /// Time to first token: from receiving a request to its first token (and, for
    /// embeddings, to the response).
    pub ttft: Duration,
    /// Inter-token latency: the gap between successive tokens of one response.
    pub itl: Duration,
    /// Output length when a request sets neither `max_tokens` nor `max_completion_tokens`.
    /// The simulator always generates exactly the requested length (like `ignore_eos`).
    pub default_max_tokens: u32,
    /// When set, every response carries `x-served-version: <value>`.
    pub served_version: Option<String>,
    /// Length of each vector returned by `/v1/embeddings`.
    pub embedding_dims: usize,
    /// Response ids from the request's `x-request-id` and a fixed `created`, so that equal
    /// requests get byte-identical responses (for proxy transparency tests).
    pub deterministic: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            models: vec!["demo".to_owned()],
            ttft: Duration::from_millis(50),
            itl: Duration::from_millis(10),
            default_max_tokens: 16,
            served_version: None,
            embedding_dims: 8,
            deterministic: false,
        }
    }
}
