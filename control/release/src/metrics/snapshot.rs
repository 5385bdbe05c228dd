//! Cumulative per-variant figures of one model, the window between two of them, and quantiles
//! from histogram buckets.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::record::{Quantiles, VariantWindow};

/// Outcomes of `infergate_requests_total` that count as errors: the gateway or the upstream
/// failed the request. A client's own mistakes (`bad_request`, `upstream_4xx`, ...) and
/// `client_cancelled` do not.
pub const ERROR_OUTCOMES: &[&str] = &[
    "upstream_5xx",
    "connect_error",
    "upstream_error",
    "timeout_connect",
    "timeout_first_token",
    "timeout_idle",
    "timeout_total",
    "no_endpoint",
];

/// Whether an outcome counts as an error (see [`ERROR_OUTCOMES`]; any `timeout_*` does).
pub fn is_error(outcome: &str) -> bool {
    ERROR_OUTCOMES.contains(&outcome) || outcome.starts_with("timeout_")
}

/// A cumulative histogram: upper bound (`le`) -> count of samples at or below it. The `+Inf`
/// bucket is `f64::INFINITY`. Saved as `[["0.1", 12], ["+Inf", 20]]` (JSON has no infinity).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// Sorted by bound.
    pub buckets: Vec<(f64, f64)>,
}

impl Histogram {
    /// Adds `count` to the bucket with bound `le` (summing series of several gateways or
    /// backends).
    pub fn add(&mut self, le: f64, count: f64) {
        match self.buckets.binary_search_by(|(b, _)| b.total_cmp(&le)) {
            Ok(i) => self.buckets[i].1 += count,
            Err(i) => self.buckets.insert(i, (le, count)),
        }
    }

    /// Samples in the histogram (the `+Inf` bucket, else the largest bucket).
    pub fn count(&self) -> f64 {
        self.buckets.last().map_or(0.0, |(_, c)| *c)
    }

    /// `self - earlier`, bucket by bucket (a bucket missing from `earlier` counts as 0).
    pub fn minus(&self, earlier: &Histogram) -> Histogram {
        let buckets = self
            .buckets
            .iter()
            .map(|&(le, c)| {
                let before = earlier
                    .buckets
                    .iter()
                    .find(|(b, _)| *b == le)
                    .map_or(0.0, |(_, c)| *c);
                (le, (c - before).max(0.0))
            })
            .collect();
        Histogram { buckets }
    }

    /// The `q` quantile as Prometheus's `histogram_quantile` estimates it: linear
    /// interpolation within the bucket that holds the rank, the lower bound of the first bucket
    /// being 0; a rank in the `+Inf` bucket gives the largest finite bound. `None` without
    /// samples.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total.is_nan() || total <= 0.0 || self.buckets.len() < 2 {
            return None;
        }
        let rank = q * total;
        let mut lower = 0.0;
        let mut below = 0.0;
        for (i, &(le, c)) in self.buckets.iter().enumerate() {
            if c >= rank {
                if le.is_infinite() {
                    return Some(self.buckets.get(i.wrapping_sub(1)).map_or(0.0, |b| b.0));
                }
                if i == 0 && le <= 0.0 {
                    return Some(le);
                }
                let in_bucket = c - below;
                if in_bucket <= 0.0 {
                    return Some(le);
                }
                return Some(lower + (le - lower) * (rank - below) / in_bucket);
            }
            lower = le;
            below = c;
        }
        self.buckets
            .iter()
            .rev()
            .find(|b| b.0.is_finite())
            .map(|b| b.0)
    }

    pub fn quantiles(&self) -> Quantiles {
        Quantiles {
            p50: self.quantile(0.5),
            p95: self.quantile(0.95),
            p99: self.quantile(0.99),
        }
    }
}

impl Serialize for Histogram {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<(String, f64)> = self
            .buckets
            .iter()
            .map(|&(le, c)| {
                let le = if le.is_infinite() {
                    "+Inf".to_owned()
                } else {
                    le.to_string()
                };
                (le, c)
            })
            .collect();
        v.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Histogram {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<(String, f64)>::deserialize(d)?;
        let mut h = Histogram::default();
        for (le, c) in v {
            let le = super::text::parse_le(&le)
                .ok_or_else(|| serde::de::Error::custom(format!("bad bucket bound {le:?}")))?;
            h.add(le, c);
        }
        Ok(h)
    }
}

/// One variant's cumulative figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VariantSnapshot {
    pub requests: f64,
    pub errors: f64,
    /// Time to first token, seconds.
    pub ttft: Histogram,
    /// Time per output token, seconds.
    pub tpot: Histogram,
}

impl VariantSnapshot {
    /// `self - earlier`: the figures of the window between the two.
    pub fn minus(&self, earlier: &VariantSnapshot) -> VariantSnapshot {
        VariantSnapshot {
            requests: (self.requests - earlier.requests).max(0.0),
            errors: (self.errors - earlier.errors).max(0.0),
            ttft: self.ttft.minus(&earlier.ttft),
            tpot: self.tpot.minus(&earlier.tpot),
        }
    }

    /// The figures as a step records them.
    pub fn window(&self) -> VariantWindow {
        let requests = self.requests.round() as u64;
        let errors = self.errors.round() as u64;
        VariantWindow {
            requests,
            errors,
            error_rate: if requests > 0 {
                errors as f64 / requests as f64
            } else {
                0.0
            },
            ttft_s: self.ttft.quantiles(),
            tpot_s: self.tpot.quantiles(),
        }
    }
}

/// Cumulative figures of one model, per variant, at one moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub variants: BTreeMap<String, VariantSnapshot>,
}

impl Snapshot {
    /// The variant's figures (zero when it has served nothing).
    pub fn variant(&self, name: &str) -> VariantSnapshot {
        self.variants.get(name).cloned().unwrap_or_default()
    }

    /// Whether a counter went down since `earlier` (a gateway restarted): the window from
    /// `earlier` would be wrong.
    pub fn went_back(&self, earlier: &Snapshot) -> bool {
        earlier.variants.iter().any(|(name, e)| {
            let now = self.variant(name);
            now.requests < e.requests || now.ttft.count() < e.ttft.count()
        })
    }

    /// The figures of `variant` over the window from `earlier` to `self`.
    pub fn window(&self, earlier: &Snapshot, variant: &str) -> VariantWindow {
        self.variant(variant)
            .minus(&earlier.variant(variant))
            .window()
    }

    /// Adds one series of `infergate_requests_total`.
    pub fn add_requests(&mut self, variant: &str, outcome: &str, count: f64) {
        let v = self.variants.entry(variant.to_owned()).or_default();
        v.requests += count;
        if is_error(outcome) {
            v.errors += count;
        }
    }
}
