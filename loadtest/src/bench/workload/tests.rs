//! Tests of the workload: repeatable bodies, datasets, arrivals.

use serde_json::Value;

use super::*;
use crate::bench::spec::Dist;

fn synth(seed: u64) -> Workload {
    Workload::new(
        Api::Chat,
        "demo".into(),
        Dist {
            mean: 20.0,
            stddev: 5.0,
        },
        Some(Dist {
            mean: 8.0,
            stddev: 2.0,
        }),
        None,
        true,
        seed,
    )
}

#[test]
fn synthetic_requests_repeat_with_the_seed() {
    let a = synth(7);
    let b = synth(7);
    let c = synth(8);
    for i in 0..20 {
        let (x, y) = (
            a.request(Stream::Measured, i),
            b.request(Stream::Measured, i),
        );
        assert_eq!(x.body, y.body);
        assert_eq!(x.max_tokens, y.max_tokens);
    }
    assert_ne!(
        a.request(Stream::Measured, 0).body,
        c.request(Stream::Measured, 0).body
    );
    assert_ne!(
        a.request(Stream::Measured, 0).body,
        a.request(Stream::Warmup, 0).body
    );
    let v: Value = serde_json::from_slice(&a.request(Stream::Measured, 3).body).unwrap();
    assert_eq!(v["model"], "demo");
    assert_eq!(v["stream"], true);
    assert_eq!(v["stream_options"]["include_usage"], true);
    assert_eq!(v["ignore_eos"], true);
    assert!(v["max_tokens"].as_u64().unwrap() >= 1);
    let words = v["messages"][0]["content"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .count();
    assert!((1..=60).contains(&words), "{words}");
}

#[test]
fn datasets() {
    let d = Dataset::parse(
        "{\"prompt\":\"a b c\",\"max_tokens\":3}\n\n{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n",
    )
    .unwrap();
    assert_eq!(d.entries.len(), 2);
    assert!(Dataset::parse("{\"x\":1}").is_err());
    assert!(Dataset::parse("not json").is_err());
    assert!(Dataset::parse("").is_err());
    assert!(Dataset::parse("{\"prompt\":\"a\",\"max_tokens\":0}").is_err());
    let w = Workload::new(
        Api::Completions,
        "m".into(),
        Dist::fixed(1.0),
        None,
        Some(d),
        false,
        1,
    );
    let mut seen = Vec::new();
    for i in 0..4 {
        let p = w.request(Stream::Measured, i);
        let v: Value = serde_json::from_slice(&p.body).unwrap();
        assert!(v.get("ignore_eos").is_none());
        seen.push((v["prompt"].as_str().unwrap().to_owned(), p.max_tokens));
    }
    // Cycled: lines repeat with period 2.
    assert_eq!(seen[0], seen[2]);
    assert_eq!(seen[1], seen[3]);
    assert!(seen.contains(&("a b c".to_owned(), Some(3))));
    assert!(seen.contains(&("hi".to_owned(), None)));
}

#[test]
fn arrivals() {
    let c: Vec<f64> = Arrivals::new(Arrival::Constant, 4.0, 1, Stream::Measured)
        .take(3)
        .collect();
    assert_eq!(c, vec![0.0, 0.25, 0.5]);
    let rate = 100.0;
    let p: Vec<f64> = Arrivals::new(Arrival::Poisson, rate, 1, Stream::Measured)
        .take(10_000)
        .collect();
    assert!(p.windows(2).all(|w| w[0] < w[1]));
    let mean_gap = p[p.len() - 1] / p.len() as f64;
    assert!((mean_gap - 0.01).abs() < 0.0005, "{mean_gap}");
    // The schedules of two rates are scaled copies.
    let q: Vec<f64> = Arrivals::new(Arrival::Poisson, 2.0 * rate, 1, Stream::Measured)
        .take(10)
        .collect();
    for (a, b) in p.iter().zip(&q) {
        assert!((a / 2.0 - b).abs() < 1e-12);
    }
}
