//! Which metric names the simulator exports: vLLM's current ones, an older vLLM's, SGLang's.

use std::fmt;
use std::str::FromStr;

use prometheus::{Gauge, IntCounter, IntGauge, Opts, Registry};

/// The metric name sets `GET /metrics` serves. The default is vLLM's current set alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricSets {
    /// vLLM's current names (`vllm:kv_cache_usage_perc`, ...).
    pub vllm: bool,
    /// An older vLLM's: the same names, but `vllm:gpu_cache_usage_perc` for the KV use. With
    /// `vllm` also set, both usage gauges are served.
    pub vllm_legacy: bool,
    /// SGLang's: `sglang:num_running_reqs`, `sglang:num_queue_reqs`, `sglang:token_usage`,
    /// `sglang:cache_hit_rate` (labelled `model_name`).
    pub sglang: bool,
}

impl Default for MetricSets {
    fn default() -> Self {
        Self {
            vllm: true,
            vllm_legacy: false,
            sglang: false,
        }
    }
}

impl MetricSets {
    /// Whether any `vllm:` name is served.
    pub fn any_vllm(&self) -> bool {
        self.vllm || self.vllm_legacy
    }
}

/// Why a metric-set list was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricSetsParseError(String);

impl fmt::Display for MetricSetsParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MetricSetsParseError {}

impl FromStr for MetricSets {
    type Err = MetricSetsParseError;

    /// A comma-separated list of `vllm`, `vllm-legacy` and `sglang`, at least one.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut sets = MetricSets {
            vllm: false,
            vllm_legacy: false,
            sglang: false,
        };
        for name in s.split(',').map(str::trim) {
            match name {
                "vllm" => sets.vllm = true,
                "vllm-legacy" => sets.vllm_legacy = true,
                "sglang" => sets.sglang = true,
                other => {
                    return Err(MetricSetsParseError(format!(
                        "unknown metric set `{other}` in `{s}`: expected a comma-separated list \
                         of vllm, vllm-legacy and sglang"
                    )))
                }
            }
        }
        Ok(sets)
    }
}

/// The gauges and counters of the KV-cache model and of the other name sets.
pub struct Extra {
    pub prefix_queries: IntCounter,
    pub prefix_hits: IntCounter,
    pub preemptions: IntCounter,
    pub gpu_cache_usage: Gauge,
    pub sglang_running: IntGauge,
    pub sglang_queue: IntGauge,
    pub sglang_token_usage: Gauge,
    pub sglang_hit_rate: Gauge,
}

fn vllm_opts(name: &str, help: &str, model: &str) -> Opts {
    Opts::new(name, help)
        .const_label("model_name", model)
        .const_label("engine", "0")
}

fn sglang_opts(name: &str, help: &str, model: &str) -> Opts {
    Opts::new(name, help).const_label("model_name", model)
}

fn register_if<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    on: bool,
    metric: M,
) -> prometheus::Result<M> {
    if on {
        registry.register(Box::new(metric.clone()))?;
    }
    Ok(metric)
}

impl Extra {
    /// Creates every metric, registering those of the chosen sets.
    pub fn new(registry: &Registry, model: &str, sets: MetricSets) -> prometheus::Result<Self> {
        let (r, v, s) = (registry, sets.any_vllm(), sets.sglang);
        Ok(Self {
            prefix_queries: register_if(
                r,
                v,
                IntCounter::with_opts(vllm_opts(
                    "vllm:prefix_cache_queries_total",
                    "Prefix cache queries, in terms of number of queried tokens.",
                    model,
                ))?,
            )?,
            prefix_hits: register_if(
                r,
                v,
                IntCounter::with_opts(vllm_opts(
                    "vllm:prefix_cache_hits_total",
                    "Prefix cache hits, in terms of number of cached tokens.",
                    model,
                ))?,
            )?,
            preemptions: register_if(
                r,
                v,
                IntCounter::with_opts(vllm_opts(
                    "vllm:num_preemptions_total",
                    "Cumulative number of preemption from the engine.",
                    model,
                ))?,
            )?,
            gpu_cache_usage: register_if(
                r,
                sets.vllm_legacy,
                Gauge::with_opts(vllm_opts(
                    "vllm:gpu_cache_usage_perc",
                    "GPU KV-cache usage. 1 means 100 percent usage.",
                    model,
                ))?,
            )?,
            sglang_running: register_if(
                r,
                s,
                IntGauge::with_opts(sglang_opts(
                    "sglang:num_running_reqs",
                    "The number of running requests.",
                    model,
                ))?,
            )?,
            sglang_queue: register_if(
                r,
                s,
                IntGauge::with_opts(sglang_opts(
                    "sglang:num_queue_reqs",
                    "The number of requests in the waiting queue.",
                    model,
                ))?,
            )?,
            sglang_token_usage: register_if(
                r,
                s,
                Gauge::with_opts(sglang_opts("sglang:token_usage", "The token usage.", model))?,
            )?,
            sglang_hit_rate: register_if(
                r,
                s,
                Gauge::with_opts(sglang_opts(
                    "sglang:cache_hit_rate",
                    "The cache hit rate.",
                    model,
                ))?,
            )?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sets_parse_from_a_comma_list() {
        let sets: MetricSets = "vllm-legacy, sglang".parse().unwrap();
        assert_eq!(
            sets,
            MetricSets {
                vllm: false,
                vllm_legacy: true,
                sglang: true
            }
        );
        let err = "vllm,tgi".parse::<MetricSets>().unwrap_err();
        assert!(err.to_string().contains("`tgi`"), "{err}");
    }
}
