//! Histogram charts.

use std::fmt::Write as _;

use crate::bench::output::escape;
use crate::bench::spec::fmt_num;
use crate::bench::stats::percentile;

use super::axis::nice_ticks;
use super::svg::{empty_chart, open_chart, H, MB, MR, MT, TL, W};

/// A histogram of `values` (milliseconds). Values beyond 3 × p99 are left out (and counted
/// in a note) so one outlier does not squash the rest.
pub fn histogram(out: &mut String, title: &str, x_label: &str, values: &[f64]) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        empty_chart(out, title, "no values");
        return;
    }
    v.sort_unstable_by(f64::total_cmp);
    let p99 = percentile(&v, 99.0);
    let cut = if v[v.len() - 1] > 3.0 * p99 && p99 > 0.0 {
        3.0 * p99
    } else {
        f64::INFINITY
    };
    let shown: Vec<f64> = v.iter().copied().filter(|x| *x <= cut).collect();
    let hidden = v.len() - shown.len();
    let (lo, hi) = (shown[0], shown[shown.len() - 1]);
    let (x0, x1, _) = nice_ticks(lo, hi, 6);
    let bins = 40usize;
    let width = (x1 - x0) / bins as f64;
    let mut counts = vec![0u64; bins];
    for x in &shown {
        let b = (((x - x0) / width).floor() as usize).min(bins - 1);
        counts[b] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(1) as f64;
    let f = open_chart(out, title, x_label, "requests", (x0, x1), (0.0, max));
    for (i, c) in counts.iter().enumerate() {
        if *c == 0 {
            continue;
        }
        let xa = f.px(x0 + i as f64 * width);
        let xb = f.px(x0 + (i + 1) as f64 * width);
        let y = f.py(*c as f64);
        let _ = write!(
            out,
            "<rect x=\"{xa:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#1f77b4\"><title>{}–{} ms: {c}</title></rect>",
            (xb - xa - 1.0).max(0.5),
            (H - MB - y).max(0.0),
            fmt_num(x0 + i as f64 * width),
            fmt_num(x0 + (i + 1) as f64 * width),
        );
    }
    let mut note = format!(
        "n={}  p50={} ms  p99={} ms",
        v.len(),
        fmt_num(percentile(&v, 50.0)),
        fmt_num(p99)
    );
    if hidden > 0 {
        let _ = write!(note, "  ({hidden} above {} ms not shown)", fmt_num(cut));
    }
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" {TL} text-anchor=\"end\">{}</text></svg>",
        W - MR,
        MT - 12.0,
        escape(&note)
    );
}
