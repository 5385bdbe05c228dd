//! Distributions of values and their percentiles.

use serde::{Deserialize, Serialize};

/// A distribution, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub count: u64,
    pub mean: f64,
    pub stddev: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// The value at percentile `p` (0–100) of sorted `v` (linear interpolation).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let rank = (p / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = rank.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            let frac = rank - lo as f64;
            let (a, b) = (sorted[lo.min(n - 1)], sorted[hi]);
            a + (b - a) * frac
        }
    }
}

/// Rounds to microsecond precision (3 decimals of a millisecond).
fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Stats {
    /// The distribution of `values` (any order; sorted in place); `None` when empty.
    pub fn of(values: &mut [f64]) -> Option<Stats> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable_by(f64::total_cmp);
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        Some(Stats {
            count: values.len() as u64,
            mean: r3(mean),
            stddev: r3(var.sqrt()),
            min: r3(values[0]),
            p50: r3(percentile(values, 50.0)),
            p90: r3(percentile(values, 90.0)),
            p95: r3(percentile(values, 95.0)),
            p99: r3(percentile(values, 99.0)),
            max: r3(values[values.len() - 1]),
        })
    }
}
