//! Tests of the statistics: percentiles, summaries, goodput, concurrency.

use super::*;
use crate::bench::record::{Kind, Record};
use crate::bench::spec::Slo;
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
