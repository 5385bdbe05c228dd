//! vLLM's Prometheus metrics, served on `GET /metrics` from a registry owned by one
//! simulator (several simulators can run in one process).

mod buckets;
mod sets;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use buckets::{E2E_BUCKETS, ITL_BUCKETS, TTFT_BUCKETS};
use sets::Extra;
pub use sets::{MetricSets, MetricSetsParseError};

use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why a request left the engine, the `finished_reason` label of
/// `vllm:request_success_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// Generated all its tokens.
    Length,
    /// An embeddings request answered.
    Stop,
    /// The client went away, or a fault cut the request off, before it finished.
    Abort,
}

/// The simulator's metrics. Engine metrics carry `model_name` (the first served model)
/// and `engine="0"`, as vLLM's do.
pub struct Metrics {
    registry: Registry,
    requests_received: IntCounter,
    pub running: IntGauge,
    pub waiting: IntGauge,
    kv_usage: Gauge,
    ttft: Histogram,
    itl: Histogram,
    e2e: Histogram,
    prompt_tokens: IntCounter,
    generation_tokens: IntCounter,
    success: [IntCounter; 3],
    /// Tokens held by running requests (prompt plus generated so far).
    kv_used: AtomicU64,
    kv_capacity: u64,
    /// The KV model's block usage (`f64` bits), which replaces the token count when set.
    block_usage: AtomicU64,
    extra: Extra,
}

/// No block usage set.
const NO_BLOCK_USAGE: u64 = u64::MAX;

fn engine_opts(name: &str, help: &str, model: &str) -> Opts {
    Opts::new(name, help)
        .const_label("model_name", model)
        .const_label("engine", "0")
}

fn histogram(
    name: &str,
    help: &str,
    model: &str,
    buckets: &[f64],
) -> prometheus::Result<Histogram> {
    let opts = HistogramOpts::new(name, help)
        .const_label("model_name", model)
        .const_label("engine", "0")
        .buckets(buckets.to_vec());
    Histogram::with_opts(opts)
}

fn register<M: prometheus::core::Collector + Clone + 'static>(
    (registry, on): (&Registry, bool),
    metric: M,
) -> prometheus::Result<M> {
    if on {
        registry.register(Box::new(metric.clone()))?;
    }
    Ok(metric)
}

impl Metrics {
    /// vLLM's current set. Fails only on an invalid metric definition, which would be a bug.
    #[cfg(test)]
    pub fn new(model: &str, kv_capacity: u64) -> prometheus::Result<Self> {
        Self::with_sets(model, kv_capacity, MetricSets::default())
    }

    /// The metrics, of which `sets` are served. Fails only on an invalid metric definition,
    /// which would be a bug here.
    pub fn with_sets(model: &str, kv_capacity: u64, sets: MetricSets) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let extra = Extra::new(&registry, model, sets)?;
        let r = (&registry, sets.any_vllm());
        let requests_received = register(
            (&registry, true),
            IntCounter::new(
                "infergate_sim_requests_received_total",
                "Inference requests received, whatever their outcome.",
            )?,
        )?;
        let running = register(
            r,
            IntGauge::with_opts(engine_opts(
                "vllm:num_requests_running",
                "Number of requests in model execution batches.",
                model,
            ))?,
        )?;
        let waiting = register(
            r,
            IntGauge::with_opts(engine_opts(
                "vllm:num_requests_waiting",
                "Number of requests waiting to be processed.",
                model,
            ))?,
        )?;
        let kv_usage = register(
            (&registry, sets.vllm),
            Gauge::with_opts(engine_opts(
                "vllm:kv_cache_usage_perc",
                "KV-cache usage. 1 means 100 percent usage.",
                model,
            ))?,
        )?;
        let ttft = register(
            r,
            histogram(
                "vllm:time_to_first_token_seconds",
                "Histogram of time to first token in seconds.",
                model,
                TTFT_BUCKETS,
            )?,
        )?;
        let itl = register(
            r,
            histogram(
                "vllm:inter_token_latency_seconds",
                "Histogram of inter-token latency in seconds.",
                model,
                ITL_BUCKETS,
            )?,
        )?;
        let e2e = register(
            r,
            histogram(
                "vllm:e2e_request_latency_seconds",
                "Histogram of e2e request latency in seconds.",
                model,
                E2E_BUCKETS,
            )?,
        )?;
        let prompt_tokens = register(
            r,
            IntCounter::with_opts(engine_opts(
                "vllm:prompt_tokens_total",
                "Number of prefill tokens processed.",
                model,
            ))?,
        )?;
        let generation_tokens = register(
            r,
            IntCounter::with_opts(engine_opts(
                "vllm:generation_tokens_total",
                "Number of generation tokens processed.",
                model,
            ))?,
        )?;
        let success_vec = register(
            r,
            IntCounterVec::new(
                engine_opts(
                    "vllm:request_success_total",
                    "Count of successfully processed requests.",
                    model,
                ),
                &["finished_reason"],
            )?,
        )?;
        let success = [
            success_vec.get_metric_with_label_values(&["length"])?,
            success_vec.get_metric_with_label_values(&["stop"])?,
            success_vec.get_metric_with_label_values(&["abort"])?,
        ];
        Ok(Self {
            registry,
            requests_received,
            running,
            waiting,
            kv_usage,
            ttft,
            itl,
            e2e,
            prompt_tokens,
            generation_tokens,
            success,
            kv_used: AtomicU64::new(0),
            kv_capacity,
            block_usage: AtomicU64::new(NO_BLOCK_USAGE),
            extra,
        })
    }

    /// Counts an inference request on arrival.
    pub fn request_received(&self) {
        self.requests_received.inc();
    }

    pub fn requests_received(&self) -> u64 {
        self.requests_received.get()
    }

    pub fn observe_ttft(&self, ttft: Duration) {
        self.ttft.observe(ttft.as_secs_f64());
    }

    pub fn observe_itl(&self, itl: Duration) {
        self.itl.observe(itl.as_secs_f64());
    }

    pub fn observe_e2e(&self, e2e: Duration) {
        self.e2e.observe(e2e.as_secs_f64());
    }

    pub fn add_prompt_tokens(&self, tokens: u64) {
        self.prompt_tokens.inc_by(tokens);
    }

    pub fn add_generation_token(&self) {
        self.generation_tokens.inc();
    }

    pub fn finished(&self, finish: Finish) {
        let index = match finish {
            Finish::Length => 0,
            Finish::Stop => 1,
            Finish::Abort => 2,
        };
        if let Some(counter) = self.success.get(index) {
            counter.inc();
        }
    }

    /// Takes `tokens` of KV cache.
    pub fn kv_acquire(&self, tokens: u64) {
        self.kv_used.fetch_add(tokens, Ordering::Relaxed);
    }

    /// Gives back `tokens` of KV cache.
    pub fn kv_release(&self, tokens: u64) {
        // Never below zero, even if the accounting were off.
        let _ = self
            .kv_used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(tokens))
            });
    }

    /// Sets the KV model's block usage, which `kv_usage` reports from now on.
    pub fn set_block_usage(&self, usage: f64) {
        self.block_usage.store(usage.to_bits(), Ordering::Relaxed);
    }

    /// A prefix-cache lookup of `queried` prompt tokens of which `hits` were cached.
    pub fn prefix_cache_query(&self, queried: u64, hits: u64) {
        self.extra.prefix_queries.inc_by(queried);
        self.extra.prefix_hits.inc_by(hits);
    }

    /// A running request was preempted.
    pub fn preempted(&self) {
        self.extra.preemptions.inc();
    }

    /// KV-cache usage now: the KV model's block usage, or else tokens held over capacity;
    /// at most 1.
    pub fn kv_usage(&self) -> f64 {
        let blocks = self.block_usage.load(Ordering::Relaxed);
        if blocks != NO_BLOCK_USAGE {
            return f64::from_bits(blocks).clamp(0.0, 1.0);
        }
        let used = self.kv_used.load(Ordering::Relaxed);
        if used == 0 {
            0.0
        } else if self.kv_capacity == 0 {
            1.0
        } else {
            (used as f64 / self.kv_capacity as f64).min(1.0)
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let usage = self.kv_usage();
        self.kv_usage.set(usage);
        let extra = &self.extra;
        extra.gpu_cache_usage.set(usage);
        extra.sglang_token_usage.set(usage);
        extra.sglang_running.set(self.running.get());
        extra.sglang_queue.set(self.waiting.get());
        let queries = extra.prefix_queries.get();
        let rate = if queries == 0 {
            0.0
        } else {
            extra.prefix_hits.get() as f64 / queries as f64
        };
        extra.sglang_hit_rate.set(rate);
        let mut out = String::new();
        if let Err(err) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            tracing::error!(%err, "failed to encode metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests;
