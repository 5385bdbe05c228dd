//! The release spec: which model's variants to move, the weight steps, how long each step runs,
//! the gates that judge it, the warmup to wait for, where metrics come from and what happens
//! after a rollback. Read from YAML (or JSON), strictly: an unknown field is an error.

#[cfg(test)]
pub(crate) mod tests;
mod validate;

use infergate_config::Dur;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use validate::validate;

/// A release of `model`: traffic moves from `stable` to `canary` in `steps`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSpec {
    /// The release's name: letters, digits, `-`, `_` and `.`, at most 63 characters.
    pub name: String,
    /// The model whose split moves (the gateway config's `models[].name`).
    pub model: String,
    /// The variant that has the traffic now.
    pub stable: String,
    /// The variant that gets it.
    pub canary: String,
    /// The canary's weight at each step, in percent: increasing, 1 to 100, ending at 100.
    pub steps: Vec<u32>,
    /// Shortest time a step runs before it is judged.
    pub step_interval: Dur,
    /// Requests the canary must have served during a step before it is judged.
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
    pub gates: Gates,
    /// Warmup that must be complete on the canary's endpoints before the first step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Warmup>,
    pub source: Source,
    #[serde(default)]
    pub on_rollback: OnRollback,
}

fn default_min_requests() -> u64 {
    20
}

/// The gates: each compares the canary with the stable variant over the same window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gates {
    /// Canary TTFT p95 must be at most this times the stable variant's.
    pub ttft_p95_ratio: f64,
    /// Canary TPOT p95 must be at most this times the stable variant's.
    pub tpot_p95_ratio: f64,
    /// Canary error rate must be at most the stable variant's plus this (0.02 = 2 points).
    pub error_rate_delta: f64,
    /// No canary endpoint may be ejected for an unhealthy GPU (read from the gateways'
    /// `GET /admin/routes`); a failure rolls back at once, without waiting for the step's end.
    #[serde(default = "yes")]
    pub gpu_healthy: bool,
    /// Absolute limits on the canary, judged with the relative gates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Slo>,
}

fn yes() -> bool {
    true
}

/// Absolute limits on the canary's window figures; each is optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_p95_s: Option<f64>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot_p95_s: Option<f64>,
    /// A fraction (0.01 = 1 %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
}

/// The warmup to wait for before the first step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Warmup {
    /// Every canary endpoint must be warm (not ejected as `model_not_warm` by any gateway).
    pub required: bool,
    /// Longest wait; after it the release is rolled back. Default `10m`.
    #[serde(default = "default_warmup_timeout")]
    pub timeout: Dur,
}

fn default_warmup_timeout() -> Dur {
    Dur::secs(600)
}

/// Where the figures come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The gateways' admin base URLs (`http://127.0.0.1:9190`): their `/metrics` are read and
    /// summed when `prometheus` is absent, and their `/admin/routes` give the canary's GPU
    /// health and warm state.
    #[serde(default)]
    pub gateways: Vec<String>,
    /// Read the metrics from Prometheus instead (its instant-query API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<Prometheus>,
    /// Longest a read of one source may take. Default `2s`.
    #[serde(default = "default_read_timeout")]
    pub timeout: Dur,
}

fn default_read_timeout() -> Dur {
    Dur::secs(2)
}

/// A Prometheus server that scrapes every gateway replica.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Prometheus {
    /// Base URL, e.g. `http://prometheus:9090`.
    pub url: String,
}

/// What happens after a rollback.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum OnRollback {
    /// The canary stays at 0; the release ends `rolled_back`.
    #[default]
    Stay,
    /// Start again from the first step after `pause`, at most `max_retries` times.
    Retry {
        pause: Dur,
        #[serde(default = "default_max_retries")]
        max_retries: u32,
    },
}

fn default_max_retries() -> u32 {
    3
}

/// A spec that cannot be read or is not valid: each problem with its field's path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError(pub Vec<String>);

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

impl std::error::Error for SpecError {}

impl ReleaseSpec {
    /// Parses a spec from YAML or JSON and validates it.
    pub fn parse(text: &str) -> Result<ReleaseSpec, SpecError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let spec: ReleaseSpec = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            SpecError(vec![if path == "." {
                inner
            } else {
                format!("{path}: {inner}")
            }])
        })?;
        validate(&spec).map_err(SpecError)?;
        Ok(spec)
    }

    /// The canary's weight at step `i` (100 past the last step).
    pub fn canary_weight(&self, i: usize) -> u32 {
        self.steps.get(i).copied().unwrap_or(100)
    }
}

/// The JSON Schema of the release spec, for editors.
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(ReleaseSpec).to_value()
}
