//! `infergate-bench compare A.json B.json ...`: key metrics of several runs side by side,
//! step by step, each with its ratio to the first run (`×1.25` = 25 % higher than A).

use std::fmt::Write as _;
use std::path::PathBuf;

use super::output::Document;
use super::stats::{Stats, Summary};

type Metric = (&'static str, fn(&Summary) -> Option<f64>);

const METRICS: [Metric; 16] = [
    ("requests/s", |s| Some(s.throughput.requests_per_s)),
    ("output tokens/s", |s| {
        Some(s.throughput.output_tokens_per_s)
    }),
    ("input tokens/s", |s| Some(s.throughput.input_tokens_per_s)),
    ("TTFT p50 (ms)", |s| p(s.ttft_ms, 50)),
    ("TTFT p99 (ms)", |s| p(s.ttft_ms, 99)),
    ("TPOT p50 (ms)", |s| p(s.tpot_ms, 50)),
    ("TPOT p99 (ms)", |s| p(s.tpot_ms, 99)),
    ("ITL p50 (ms)", |s| p(s.itl_ms, 50)),
    ("ITL p99 (ms)", |s| p(s.itl_ms, 99)),
    ("E2E p50 (ms)", |s| p(s.e2e_ms, 50)),
    ("E2E p99 (ms)", |s| p(s.e2e_ms, 99)),
    ("failed requests", |s| Some(s.requests.failed as f64)),
    ("send lag p99 (ms)", |s| Some(s.send_lag_ms.p99)),
    ("goodput req/s", |s| s.goodput.map(|g| g.requests_per_s)),
    ("SLO met %", |s| s.goodput.map(|g| g.attainment_pct)),
    ("duration (s)", |s| Some(s.duration_s)),
];

fn p(s: Option<Stats>, which: u8) -> Option<f64> {
    s.map(|s| if which == 50 { s.p50 } else { s.p99 })
}

fn value(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The comparison table of `paths` (at least two runs).
pub fn compare(paths: &[PathBuf]) -> Result<String, String> {
    if paths.len() < 2 {
        return Err("compare needs at least two result files".to_owned());
    }
    let docs: Vec<Document> = paths
        .iter()
        .map(|p| Document::read_json(p))
        .collect::<Result<_, _>>()?;
    Ok(render(&docs, paths))
}

fn letter(i: usize) -> String {
    if i < 26 {
        char::from(b'A' + i as u8).to_string()
    } else {
        format!("R{}", i + 1)
    }
}

pub fn render(docs: &[Document], paths: &[PathBuf]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Comparing {} runs; each value after the first run's is followed by its ratio to it (×B/A).",
        docs.len()
    );
    for (i, (d, path)) in docs.iter().zip(paths).enumerate() {
        let _ = writeln!(
            o,
            "  {} = {}  ({}, {} at {}, {} step{})",
            letter(i),
            d.name(path),
            d.config.endpoint,
            d.config.model,
            d.started_at,
            d.steps.len(),
            if d.steps.len() == 1 { "" } else { "s" }
        );
    }
    let steps = docs.iter().map(|d| d.steps.len()).max().unwrap_or(0);
    let col = 22;
    for si in 0..steps {
        let _ = writeln!(o);
        let loads: Vec<String> = docs
            .iter()
            .map(|d| {
                d.steps
                    .get(si)
                    .map_or_else(|| "–".to_owned(), |s| s.load.describe())
            })
            .collect();
        let all_same = loads.windows(2).all(|w| w[0] == w[1]);
        if all_same {
            let _ = writeln!(o, "step {}: {}", si + 1, loads[0]);
        } else {
            let parts: Vec<String> = loads
                .iter()
                .enumerate()
                .map(|(i, l)| format!("{} {l}", letter(i)))
                .collect();
            let _ = writeln!(o, "step {}: {}", si + 1, parts.join(" | "));
        }
        let _ = write!(o, "{:<20}", "metric");
        for i in 0..docs.len() {
            let _ = write!(o, "{:>col$}", letter(i));
        }
        let _ = writeln!(o);
        for (name, f) in METRICS {
            let vals: Vec<Option<f64>> = docs
                .iter()
                .map(|d| d.steps.get(si).and_then(|s| f(&s.summary)))
                .collect();
            if vals.iter().all(Option::is_none) {
                continue;
            }
            let _ = write!(o, "{name:<20}");
            let base = vals[0];
            for (i, v) in vals.iter().enumerate() {
                let fmt = |v: f64| {
                    if name == "failed requests" {
                        format!("{v:.0}")
                    } else {
                        value(v)
                    }
                };
                let cell = match (v, base) {
                    (None, _) => "–".to_owned(),
                    (Some(v), _) if i == 0 => fmt(*v),
                    (Some(v), Some(b)) if b != 0.0 => format!("{} ×{:.2}", fmt(*v), v / b),
                    (Some(v), _) => fmt(*v),
                };
                let _ = write!(o, "{cell:>col$}");
            }
            let _ = writeln!(o);
        }
        let digests: Vec<Option<&str>> = docs
            .iter()
            .map(|d| d.steps.get(si).map(|s| s.summary.workload_digest.as_str()))
            .collect();
        let _ = write!(o, "{:<20}", "same requests as A");
        for (i, dg) in digests.iter().enumerate() {
            let cell = match (i, dg, digests[0]) {
                (0, _, _) => "–",
                (_, Some(a), Some(b)) if a == &b => "yes",
                (_, Some(_), Some(_)) => "no",
                _ => "–",
            };
            let _ = write!(o, "{cell:>col$}");
        }
        let _ = writeln!(o);
    }
    o
}
