//! What a release records as it runs: every step's weights, window, per-variant figures and
//! gate verdicts, and the weights over time. The persisted state, the API's answer and the
//! report (JSON and HTML) are all made from a [`ReleaseRecord`].

use serde::{Deserialize, Serialize};

/// A release from its start to now.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    pub name: String,
    pub model: String,
    pub stable: String,
    pub canary: String,
    /// `pending`, `warming`, `running`, `paused`, `promoted`, `rolled_back`, `aborted`.
    pub state: String,
    /// Why it ended (or paused), in words: the failed gate with its figures, "aborted", ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Unix milliseconds.
    pub started_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at_ms: Option<u64>,
    /// The step being run or judged now (index into `spec.steps`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step: Option<usize>,
    pub steps: Vec<StepRecord>,
    /// Every change of the weights sent to the gateways, in order.
    pub weights: Vec<WeightChange>,
}

/// One step: the canary's weight, the window it was judged on, and the verdict.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Index into the spec's steps.
    pub index: usize,
    /// The canary's weight in percent during the step (the stable variant has the rest).
    pub canary_weight: u32,
    pub started_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judged_at_ms: Option<u64>,
    /// Length of the window the figures cover, in seconds.
    pub window_s: f64,
    pub stable: VariantWindow,
    pub canary: VariantWindow,
    pub gates: Vec<GateResult>,
    /// `pending`, `pass` or `fail`.
    pub verdict: String,
}

/// One variant's figures over a step's window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VariantWindow {
    pub requests: u64,
    /// Requests whose outcome is an error (see docs/release.md).
    pub errors: u64,
    /// `errors / requests`; 0 without requests.
    pub error_rate: f64,
    /// Time to first token, seconds.
    pub ttft_s: Quantiles,
    /// Time per output token, seconds.
    pub tpot_s: Quantiles,
}

/// Quantiles estimated from histogram buckets; `None` without samples.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// One gate's value against its limit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// `ttft_p95`, `tpot_p95`, `error_rate`, `gpu_healthy`, `slo_ttft_p95`, ...
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
    pub pass: bool,
    /// The comparison in words, e.g. "canary 0.210 s <= 1.5 x stable 0.100 s = 0.150 s: fail".
    pub detail: String,
}

/// The weights from a moment on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightChange {
    pub at_ms: u64,
    pub stable: u32,
    pub canary: u32,
}
