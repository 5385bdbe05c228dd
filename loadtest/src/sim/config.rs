//! Simulator settings.

use std::time::Duration;

use super::fault::FaultRule;
use super::metrics::MetricSets;

/// How the simulator behaves. Every model in `models` behaves the same way: they are names
/// of one simulated engine, which shares one capacity and one set of metrics.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Model names served; a request for any other name gets vLLM's 404. The first one
    /// labels the metrics (`model_name`), as vLLM labels them with its first served name.
    pub models: Vec<String>,
    /// Mean time to first token: from the moment a request gets a running slot to its
    /// first token (and, for embeddings, to the response).
    pub ttft: Duration,
    /// Standard deviation of the time to first token; zero (the default) makes it exact.
    /// Draws come from a normal distribution clamped to `[0.3 * ttft, 1.7 * ttft]`.
    pub ttft_stddev: Duration,
    /// Mean inter-token latency: the gap between successive tokens of one response.
    pub itl: Duration,
    /// Standard deviation of each inter-token gap; zero (the default) makes it exact.
    /// Draws are clamped to `[0.3 * itl, 1.7 * itl]`.
    pub itl_stddev: Duration,
    /// Prefill cost added to the time to first token per 1000 prompt tokens: a request
    /// with `p` prompt tokens waits `ttft + prefill_per_1k_tokens * p / 1000` for its
    /// first token.
    pub prefill_per_1k_tokens: Duration,
    /// Seed of the random draws (timing and fault rates). Request `n` (in arrival order)
    /// draws from a generator seeded with `seed` and `n`, so a run with the same seed and
    /// the same request order repeats its draws. `None` picks a random seed.
    pub seed: Option<u64>,
    /// Output length when a request sets neither `max_tokens` nor `max_completion_tokens`.
    /// The simulator always generates exactly the requested length (like `ignore_eos`).
    pub default_max_tokens: u32,
    /// Most requests generating at once (streaming or not, embeddings included); the others
    /// wait in a FIFO queue, and their time to first token starts when they get a slot.
    /// `None` (the default): no limit. `Some(0)` is refused by [`Simulator::start`].
    ///
    /// [`Simulator::start`]: super::Simulator::start
    pub max_running: Option<usize>,
    /// Most requests waiting for a slot; a request beyond it is answered 429 at once.
    /// Only matters with `max_running`.
    pub max_waiting: usize,
    /// Simulated KV-cache capacity, in tokens. Without [`SimConfig::kv_model`],
    /// `vllm:kv_cache_usage_perc` is the running requests' prompt plus generated tokens over
    /// this, at most 1, and nothing waits for KV space; with it, it is the hard capacity.
    pub kv_cache_tokens: u64,
    /// The vLLM-like KV-cache model: requests hold blocks of KV cache, wait when it is full,
    /// are preempted when it runs out, and share cached prompt prefixes. `None` (the
    /// default): KV use is only measured.
    pub kv_model: Option<KvModel>,
    /// Which metric names `GET /metrics` serves (default: vLLM's current ones).
    pub metric_sets: MetricSets,
    /// This instance's name, sent in `x-sim-instance` by the KServe, ComfyUI and WebUI
    /// routes; `None` (the default): the bound address.
    pub instance: Option<String>,
    /// Time of one image sampling step (ComfyUI's `KSampler`, WebUI's `steps`).
    pub image_step: Duration,
    /// Faults drawn for each inference request, in order; the first that hits applies.
    /// A request's `x-sim-fault` header overrides them.
    pub faults: Vec<FaultRule>,
    /// Slow start: for this long after [`Simulator::start`], `GET /health` and inference
    /// requests are answered 503.
    ///
    /// [`Simulator::start`]: super::Simulator::start
    pub startup: Duration,
    /// When set, every response carries `x-served-version: <value>`.
    pub served_version: Option<String>,
    /// Length of each vector returned by `/v1/embeddings`.
    pub embedding_dims: usize,
    /// Response ids from the request's `x-request-id` and a fixed `created`, so that equal
    /// requests get byte-identical responses (for proxy transparency tests).
    pub deterministic: bool,
}

/// The KV-cache model's settings (see [`SimConfig::kv_model`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvModel {
    /// Tokens per KV block; the capacity is `kv_cache_tokens / block_size` blocks.
    pub block_size: u32,
    /// Cache full prompt blocks by the hash of their tokens, evicting the least recently
    /// used; prefill then covers only the uncached tokens.
    pub prefix_caching: bool,
}

/// Default of [`KvModel::block_size`], vLLM's default on GPUs.
pub const DEFAULT_BLOCK_SIZE: u32 = 16;

impl Default for KvModel {
    fn default() -> Self {
        Self {
            block_size: DEFAULT_BLOCK_SIZE,
            prefix_caching: true,
        }
    }
}

/// Default of [`SimConfig::max_waiting`].
pub const DEFAULT_MAX_WAITING: usize = 1000;

/// Default of [`SimConfig::kv_cache_tokens`].
pub const DEFAULT_KV_CACHE_TOKENS: u64 = 65536;

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            models: vec!["demo".to_owned()],
            ttft: Duration::from_millis(50),
            ttft_stddev: Duration::ZERO,
            itl: Duration::from_millis(10),
            itl_stddev: Duration::ZERO,
            prefill_per_1k_tokens: Duration::ZERO,
            seed: None,
            default_max_tokens: 16,
            max_running: None,
            max_waiting: DEFAULT_MAX_WAITING,
            kv_cache_tokens: DEFAULT_KV_CACHE_TOKENS,
            kv_model: None,
            metric_sets: MetricSets::default(),
            instance: None,
            image_step: Duration::from_millis(20),
            faults: Vec::new(),
            startup: Duration::ZERO,
            served_version: None,
            embedding_dims: 8,
            deterministic: false,
        }
    }
}
