//! The summary of a run (or of one sweep step), as written to the results.

use serde::{Deserialize, Serialize};

use crate::bench::record::Kind;
use crate::bench::spec::Slo;

use super::distribution::Stats;

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Measured requests sent (warm-up excluded).
    pub total: u64,
    pub ok: u64,
    pub failed: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    pub http_4xx: u64,
    pub http_5xx: u64,
    pub timeout: u64,
    pub connect: u64,
    pub stream_error: u64,
}

impl ErrorCounts {
    pub fn get(&self, k: Kind) -> u64 {
        match k {
            Kind::Ok => 0,
            Kind::Http4xx => self.http_4xx,
            Kind::Http5xx => self.http_5xx,
            Kind::Timeout => self.timeout,
            Kind::Connect => self.connect,
            Kind::StreamError => self.stream_error,
        }
    }

    pub fn add(&mut self, k: Kind) {
        let slot = match k {
            Kind::Ok => return,
            Kind::Http4xx => &mut self.http_4xx,
            Kind::Http5xx => &mut self.http_5xx,
            Kind::Timeout => &mut self.timeout,
            Kind::Connect => &mut self.connect,
            Kind::StreamError => &mut self.stream_error,
        };
        *slot += 1;
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Successful requests per second.
    pub requests_per_s: f64,
    /// Input tokens of successful requests per second.
    pub input_tokens_per_s: f64,
    /// Output tokens of successful requests per second.
    pub output_tokens_per_s: f64,
    pub total_tokens_per_s: f64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tokens {
    /// Sum of `usage.prompt_tokens` of successful requests.
    pub input: u64,
    /// Sum of output tokens of successful requests.
    pub output: u64,
}

/// Actual − scheduled send time, over every measured request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lag {
    pub mean: f64,
    pub p99: f64,
    pub max: f64,
}

/// Requests in flight (from the records' send and end times).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Concurrency {
    /// Time-averaged: the sum of E2E latencies over the duration.
    pub mean: f64,
    pub max: u64,
}

/// SLO thresholds, in milliseconds (null: not set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SloMs {
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
}

impl From<Slo> for SloMs {
    fn from(s: Slo) -> Self {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        Self {
            ttft_ms: s.ttft.map(ms),
            tpot_ms: s.tpot.map(ms),
            e2e_ms: s.e2e.map(ms),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Goodput {
    pub slo: SloMs,
    /// Successful requests that meet every SLO.
    pub good_requests: u64,
    /// `good_requests` per second of the duration.
    pub requests_per_s: f64,
    /// `good_requests` over all measured requests (failed ones included), in percent.
    pub attainment_pct: f64,
}

/// Everything a run (or sweep step) is judged by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// From the start of the step to the end of its last request, in seconds.
    pub duration_s: f64,
    pub requests: Counts,
    pub errors: ErrorCounts,
    pub tokens: Tokens,
    pub throughput: Throughput,
    pub ttft_ms: Option<Stats>,
    pub tpot_ms: Option<Stats>,
    pub itl_ms: Option<Stats>,
    pub e2e_ms: Option<Stats>,
    pub send_lag_ms: Lag,
    pub concurrency: Concurrency,
    pub goodput: Option<Goodput>,
    /// FNV-1a over the request bodies in id order: equal digests, equal requests.
    pub workload_digest: String,
}
