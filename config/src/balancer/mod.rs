//! A backend's endpoint choice (`backends[].balancer`): the policy, prefix affinity and the
//! engine state it reads. Without the section the gateway uses power of two choices on
//! in-flight requests (`p2c`). See `docs/scheduling.md`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::units::{ByteSize, Dur};

/// How a backend chooses an endpoint for a request.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Balancer {
    /// `p2c` (default), `least_latency`, `model_aware` or `round_robin`.
    pub policy: Policy,
    /// Send requests that share a prompt prefix to the same endpoint (combines with any
    /// policy). Default: off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_affinity: Option<PrefixAffinity>,
    /// Weights of `model_aware`'s score.
    pub weights: ScoreWeights,
    /// `model_aware` skips an endpoint whose KV-cache use (0 to 1) is at or above this while
    /// another candidate is below both thresholds. Default `0.9`.
    pub kv_threshold: f64,
    /// `model_aware` skips an endpoint with this many requests or more waiting in its engine's
    /// queue while another candidate is below both thresholds. Default `8`.
    pub queue_threshold: u32,
    /// Engine state older than this is stale: the choice falls back to in-flight counts.
    /// Default `1s`.
    pub stale_after: Dur,
    /// How many endpoints `model_aware` scores per request (a random sample when the variant
    /// has more). Default `8`.
    pub candidates: u32,
    /// Scrape each endpoint's Prometheus metrics. Implied by `model_aware` (with the
    /// defaults); set `engine_state: {}` to show the state in `/admin/endpoints` with another
    /// policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_state: Option<EngineState>,
    /// Add `x-infergate-endpoint-reason` to responses: why the endpoint was chosen.
    /// Default `false`.
    pub reason_header: bool,
}

impl Default for Balancer {
    fn default() -> Self {
        Balancer {
            policy: Policy::P2c,
            prefix_affinity: None,
            weights: ScoreWeights::default(),
            kv_threshold: 0.9,
            queue_threshold: 8,
            stale_after: Dur::secs(1),
            candidates: 8,
            engine_state: None,
            reason_header: false,
        }
    }
}

impl Balancer {
    /// The engine-state scrape settings, when this balancer reads engine state.
    pub fn scrape(&self) -> Option<EngineState> {
        match (&self.engine_state, self.policy) {
            (Some(e), _) => Some(e.clone()),
            (None, Policy::ModelAware) => Some(EngineState::default()),
            (None, _) => None,
        }
    }

    /// Reports what is wrong under `path` (`backends[i].balancer`).
    pub(crate) fn check(&self, path: &str, push: &mut impl FnMut(String, String)) {
        let w = &self.weights;
        for (name, v) in [("queue", w.queue), ("kv", w.kv), ("in_flight", w.in_flight)] {
            if !(v.is_finite() && v >= 0.0) {
                push(
                    format!("{path}.weights.{name}"),
                    format!("{v} is not a finite number >= 0"),
                );
            }
        }
        if !(self.kv_threshold > 0.0 && self.kv_threshold <= 1.0) {
            push(
                format!("{path}.kv_threshold"),
                format!("{} is not in (0, 1]", self.kv_threshold),
            );
        }
        if self.queue_threshold == 0 {
            push(
                format!("{path}.queue_threshold"),
                "must be at least 1".into(),
            );
        }
        if self.stale_after.get().is_zero() {
            push(format!("{path}.stale_after"), "must be more than 0".into());
        }
        if !(1..=1024).contains(&self.candidates) {
            push(
                format!("{path}.candidates"),
                format!("{} is not in 1..=1024", self.candidates),
            );
        }
        if let Some(a) = &self.prefix_affinity {
            a.check(&format!("{path}.prefix_affinity"), push);
        }
        if let Some(e) = &self.engine_state {
            e.check(&format!("{path}.engine_state"), push);
        }
    }
}

/// The endpoint choice rule.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Power of two choices on in-flight requests.
    #[default]
    P2c,
    /// Power of two choices on peak-EWMA latency times (in-flight + 1).
    LeastLatency,
    /// A weighted score over the engine's queue, KV-cache use and in-flight requests.
    ModelAware,
    /// The endpoints in turn (a baseline: reads no load).
    RoundRobin,
}

/// Weights of the `model_aware` score: `queue × waiting + kv × kv_use × 10 + in_flight ×
/// in-flight` (KV use is a fraction, so `kv × 10` makes a full cache weigh like ten waiting
/// requests at weight 1).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScoreWeights {
    /// Per request waiting in the engine's queue. Default `1`.
    pub queue: f64,
    /// Per tenth of the KV cache in use. Default `1`.
    pub kv: f64,
    /// Per request in flight from this gateway. Default `1`.
    pub in_flight: f64,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        ScoreWeights {
            queue: 1.0,
            kv: 1.0,
            in_flight: 1.0,
        }
    }
}

/// Prefix affinity: the hash of the prompt's first blocks places the request on a consistent
/// hash ring of the endpoints; an endpoint over its load bound spills to the next.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrefixAffinity {
    /// Block size in bytes of the prompt's JSON text. Default `256`.
    pub block_bytes: u32,
    /// How many leading blocks are hashed (whole blocks only, unless the prompt is shorter than
    /// one block). Default `4`.
    pub blocks: u32,
    /// An endpoint takes affine requests while its in-flight count is under
    /// `load_factor × (average in-flight + 1)`. Default `1.25`.
    pub load_factor: f64,
    /// Points per endpoint on the hash ring. Default `16`.
    pub points: u32,
}

impl Default for PrefixAffinity {
    fn default() -> Self {
        PrefixAffinity {
            block_bytes: 256,
            blocks: 4,
            load_factor: 1.25,
            points: 16,
        }
    }
}

impl PrefixAffinity {
    fn check(&self, path: &str, push: &mut impl FnMut(String, String)) {
        if !(16..=65536).contains(&self.block_bytes) {
            push(
                format!("{path}.block_bytes"),
                format!("{} is not in 16..=65536", self.block_bytes),
            );
        }
        if !(1..=256).contains(&self.blocks) {
            push(
                format!("{path}.blocks"),
                format!("{} is not in 1..=256", self.blocks),
            );
        }
        if !(self.load_factor.is_finite() && self.load_factor >= 1.0) {
            push(
                format!("{path}.load_factor"),
                format!("{} is not a number >= 1", self.load_factor),
            );
        }
        if !(1..=256).contains(&self.points) {
            push(
                format!("{path}.points"),
                format!("{} is not in 1..=256", self.points),
            );
        }
    }
}

/// Scraping of the engines' Prometheus metrics.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EngineState {
    /// The metric names: `vllm` (default) or `sglang`.
    pub engine: Engine,
    /// Other names than the preset's, for other engines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub names: Option<MetricNames>,
    /// Count only series with this `model_name` label; default: every series (queue and
    /// running are summed, KV use is the largest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    /// Path of the metrics page on each endpoint (after its URL's prefix). Default `/metrics`.
    pub path: String,
    /// Time between two scrapes of an endpoint. Default `100ms`.
    pub interval: Dur,
    /// Longest scrape, the whole page included. Default `250ms`.
    pub timeout: Dur,
    /// Largest metrics page read. Default `1MiB`.
    pub max_bytes: ByteSize,
    /// Most scrapes in progress at once for the backend. Default `64`.
    pub concurrency: u32,
}

impl Default for EngineState {
    fn default() -> Self {
        EngineState {
            engine: Engine::Vllm,
            names: None,
            model_name: None,
            path: "/metrics".into(),
            interval: Dur::millis(100),
            timeout: Dur::millis(250),
            max_bytes: ByteSize::mib(1),
            concurrency: 64,
        }
    }
}

impl EngineState {
    fn check(&self, path: &str, push: &mut impl FnMut(String, String)) {
        if !self.path.starts_with('/') || self.path.contains(char::is_whitespace) {
            push(
                format!("{path}.path"),
                format!("{:?} is not an absolute path", self.path),
            );
        }
        if self.interval.get() < std::time::Duration::from_millis(10) {
            push(
                format!("{path}.interval"),
                format!("{} is shorter than 10ms", self.interval),
            );
        }
        if self.timeout.get().is_zero() {
            push(format!("{path}.timeout"), "must be more than 0".into());
        }
        if self.max_bytes.get() < 1024 {
            push(
                format!("{path}.max_bytes"),
                format!("{} is less than 1KiB", self.max_bytes),
            );
        }
        if self.concurrency == 0 {
            push(format!("{path}.concurrency"), "must be at least 1".into());
        }
        if let Some(n) = &self.names {
            for (name, v) in [
                ("queue", &n.queue),
                ("running", &n.running),
                ("kv_usage", &n.kv_usage),
            ] {
                if v.is_empty() || v.contains(|c: char| c.is_whitespace() || c == '{') {
                    push(
                        format!("{path}.names.{name}"),
                        format!("{v:?} is not a metric name"),
                    );
                }
            }
        }
    }
}

/// A preset of metric names.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// `vllm:num_requests_waiting`, `vllm:num_requests_running`, `vllm:kv_cache_usage_perc`
    /// (else the older `vllm:gpu_cache_usage_perc`).
    #[default]
    Vllm,
    /// `sglang:num_queue_reqs`, `sglang:num_running_reqs`, `sglang:token_usage`.
    Sglang,
}

/// The metric names of an engine: gauges of waiting and running requests and the KV-cache use
/// as a fraction (0 to 1).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricNames {
    pub queue: String,
    pub running: String,
    pub kv_usage: String,
}

#[cfg(test)]
mod tests;
