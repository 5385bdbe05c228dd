//! Summarizing the records of a run: counts, distributions, goodput, digest.

use crate::bench::record::{us_to_ms, Record};
use crate::bench::spec::Slo;
use crate::bench::workload::fnv1a;

use super::distribution::Stats;
use super::summary::{Concurrency, Counts, ErrorCounts, Goodput, Lag, Summary, Throughput, Tokens};

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
