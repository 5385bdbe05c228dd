//! Distributions and the summary of a run (or of one sweep step).
//!
//! Percentiles interpolate linearly between the closest ranks (NumPy's default, as vLLM's
//! benchmark uses): `p` is at rank `p/100 * (n − 1)` of the sorted values.

use serde::{Deserialize, Serialize};

use super::record::{us_to_ms, Kind, Record};
use super::spec::Slo;
use super::workload::fnv1a;

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

    fn add(&mut self, k: Kind) {
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

/// Whether a successful request meets every SLO set (an unset SLO, or a TPOT that does not
/// exist because of fewer than 2 output tokens, is met). `tpot_us` is [`Record::tpot_us`].
pub fn meets(r: &Record, tpot_us: Option<f64>, slo: &Slo) -> bool {
    if !r.ok() {
        return false;
    }
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    if let Some(t) = slo.ttft {
        match r.ttft_us {
            Some(v) if v as f64 <= us(t) => {}
            _ => return false,
        }
    }
    if let (Some(t), Some(v)) = (slo.tpot, tpot_us) {
        if v > us(t) {
            return false;
        }
    }
    if let Some(t) = slo.e2e {
        if r.e2e_us as f64 > us(t) {
            return false;
        }
    }
    true
}

/// Summarizes `records` (sorted by id or not) over `duration_s`.
pub fn summarize(records: &[Record], duration_s: f64, slo: Option<&Slo>) -> Summary {
    let mut counts = Counts::default();
    let mut errors = ErrorCounts::default();
    let mut tokens = Tokens::default();
    let (mut ttft, mut tpot, mut itl, mut e2e, mut lag) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut good: u64 = 0;
    for r in records {
        counts.total += 1;
        lag.push(us_to_ms(r.send_lag_us()));
        if !r.ok() {
            counts.failed += 1;
            errors.add(r.kind);
            continue;
        }
        counts.ok += 1;
        tokens.input += r.input_tokens.unwrap_or(0);
        tokens.output += r.output_tokens;
        if let Some(t) = r.ttft_us {
            ttft.push(us_to_ms(t));
        }
        let tpot_us = r.tpot_us();
        if let Some(t) = tpot_us {
            tpot.push(t / 1000.0);
        }
        if slo.is_some_and(|s| meets(r, tpot_us, s)) {
            good += 1;
        }
        itl.extend(r.itl_us.iter().map(|&g| us_to_ms(u64::from(g))));
        e2e.push(us_to_ms(r.e2e_us));
    }
    let per_s = |x: f64| {
        if duration_s > 0.0 {
            x / duration_s
        } else {
            0.0
        }
    };
    let lag_stats = Stats::of(&mut lag);
    let goodput = slo.map(|s| Goodput {
        slo: (*s).into(),
        good_requests: good,
        requests_per_s: per_s(good as f64),
        attainment_pct: if counts.total > 0 {
            100.0 * good as f64 / counts.total as f64
        } else {
            0.0
        },
    });
    let busy_s: f64 = records.iter().map(|r| r.e2e_us as f64 / 1e6).sum();
    Summary {
        duration_s,
        requests: counts,
        errors,
        tokens,
        throughput: Throughput {
            requests_per_s: per_s(counts.ok as f64),
            input_tokens_per_s: per_s(tokens.input as f64),
            output_tokens_per_s: per_s(tokens.output as f64),
            total_tokens_per_s: per_s((tokens.input + tokens.output) as f64),
        },
        ttft_ms: Stats::of(&mut ttft),
        tpot_ms: Stats::of(&mut tpot),
        itl_ms: Stats::of(&mut itl),
        e2e_ms: Stats::of(&mut e2e),
        send_lag_ms: lag_stats
            .map(|s| Lag {
                mean: s.mean,
                p99: s.p99,
                max: s.max,
            })
            .unwrap_or_default(),
        concurrency: Concurrency {
            mean: per_s(busy_s),
            max: max_in_flight(records),
        },
        goodput,
        workload_digest: digest(records),
    }
}

/// The most requests in flight at once.
pub fn max_in_flight(records: &[Record]) -> u64 {
    let mut ev: Vec<(u64, i32)> = Vec::with_capacity(records.len() * 2);
    for r in records {
        ev.push((r.sent_us, 1));
        ev.push((r.end_us(), -1));
    }
    // Ends before starts at the same instant.
    ev.sort_unstable();
    let (mut cur, mut max) = (0i64, 0i64);
    for (_, d) in ev {
        cur += i64::from(d);
        max = max.max(cur);
    }
    max.max(0) as u64
}

/// The workload digest: FNV-1a over the request digests in id order.
pub fn digest(records: &[Record]) -> String {
    let mut ids: Vec<(u64, u64)> = records.iter().map(|r| (r.id, r.digest)).collect();
    ids.sort_unstable();
    let bytes: Vec<u8> = ids.iter().flat_map(|&(_, d)| d.to_le_bytes()).collect();
    format!("fnv1a64:{:016x}", fnv1a(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rec(id: u64, ttft_ms: u64, e2e_ms: u64, tokens: u64, kind: Kind) -> Record {
        Record {
            id,
            scheduled_us: id * 1000,
            sent_us: id * 1000 + 100,
            ttft_us: Some(ttft_ms * 1000),
            e2e_us: e2e_ms * 1000,
            itl_us: vec![10_000; tokens.saturating_sub(1) as usize].into(),
            input_tokens: Some(5),
            output_tokens: tokens,
            token_events: tokens,
            usage_reported: true,
            max_tokens: Some(tokens as u32),
            status: Some(200),
            kind,
            error: None,
            digest: id,
        }
    }

    #[test]
    fn percentiles_interpolate() {
        let v: Vec<f64> = (1..=5).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 3.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 100.0), 5.0);
        assert!((percentile(&v, 90.0) - 4.6).abs() < 1e-12);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
        let mut w = vec![3.0, 1.0, 2.0];
        let s = Stats::of(&mut w).unwrap();
        assert_eq!(
            (s.count, s.min, s.p50, s.max, s.mean),
            (3, 1.0, 2.0, 3.0, 2.0)
        );
        assert!(Stats::of(&mut []).is_none());
    }

    #[test]
    fn summary_counts_throughput_and_goodput() {
        let records = vec![
            rec(0, 100, 200, 11, Kind::Ok),
            rec(1, 300, 400, 11, Kind::Ok),
            rec(2, 100, 150, 1, Kind::Ok),
            Record {
                ttft_us: None,
                itl_us: Box::new([]),
                output_tokens: 0,
                kind: Kind::Http5xx,
                status: Some(503),
                ..rec(3, 0, 1, 0, Kind::Http5xx)
            },
        ];
        let slo: Slo = "ttft=200ms,tpot=50ms".parse().unwrap();
        let s = summarize(&records, 2.0, Some(&slo));
        assert_eq!(
            s.requests,
            Counts {
                total: 4,
                ok: 3,
                failed: 1
            }
        );
        assert_eq!(s.errors.http_5xx, 1);
        assert_eq!(s.tokens.output, 23);
        assert_eq!(s.tokens.input, 15);
        assert_eq!(s.throughput.requests_per_s, 1.5);
        assert_eq!(s.ttft_ms.unwrap().p50, 100.0);
        // Only the two requests with >= 2 tokens have a TPOT.
        assert_eq!(s.tpot_ms.unwrap().count, 2);
        assert_eq!(s.tpot_ms.unwrap().mean, 10.0);
        assert_eq!(s.itl_ms.unwrap().count, 20);
        let g = s.goodput.unwrap();
        assert_eq!(g.good_requests, 2);
        assert_eq!(g.requests_per_s, 1.0);
        assert_eq!(g.attainment_pct, 50.0);
        assert_eq!(g.slo.ttft_ms, Some(200.0));
        assert_eq!(s.send_lag_ms.max, 0.1);
        assert!(s.workload_digest.starts_with("fnv1a64:"));
        let tight = Slo {
            e2e: Some(Duration::from_millis(160)),
            ..Slo::default()
        };
        assert_eq!(
            summarize(&records, 2.0, Some(&tight))
                .goodput
                .unwrap()
                .good_requests,
            1
        );
    }

    #[test]
    fn in_flight() {
        let mut a = rec(0, 1, 10, 1, Kind::Ok);
        a.sent_us = 0;
        let mut b = rec(1, 1, 10, 1, Kind::Ok);
        b.sent_us = 5_000;
        let mut c = rec(2, 1, 10, 1, Kind::Ok);
        c.sent_us = 10_000; // starts as `a` ends
        assert_eq!(max_in_flight(&[a, b, c]), 2);
        assert_eq!(max_in_flight(&[]), 0);
    }
}
