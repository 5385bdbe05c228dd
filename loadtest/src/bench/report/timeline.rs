//! Time series of a run: TTFT per request and output tokens per second.

use std::fmt::Write as _;

use crate::bench::record::Record;
use crate::bench::spec::fmt_num;
use crate::bench::stats::percentile;

use super::axis::nice_step;
use super::line_chart::{line_chart, Series};
use super::svg::{empty_chart, open_chart, COLORS, MR, MT, TL, W};

/// TTFT of each request (dots, at its send time) and the median per time bucket (line).
pub(super) fn ttft_over_time(out: &mut String, title: &str, records: &[Record]) {
    let pts: Vec<(f64, f64)> = records
        .iter()
        .filter_map(|r| {
            r.ttft_us
                .map(|t| (r.sent_us as f64 / 1e6, t as f64 / 1000.0))
        })
        .collect();
    if pts.is_empty() {
        empty_chart(out, title, "no request produced a token");
        return;
    }
    let xhi = pts.iter().map(|p| p.0).fold(0.0, f64::max);
    let yhi = pts.iter().map(|p| p.1).fold(0.0, f64::max);
    let f = open_chart(
        out,
        title,
        "time since start (s)",
        "TTFT (ms)",
        (0.0, xhi),
        (0.0, yhi),
    );
    // At most ~3000 dots.
    let stride = pts.len().div_ceil(3000).max(1);
    for (x, y) in pts.iter().step_by(stride) {
        let _ = write!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"1.6\" fill=\"#1f77b4\" fill-opacity=\"0.45\"/>",
            f.px(*x),
            f.py(*y)
        );
    }
    let bucket = bucket_size(xhi);
    let n = (xhi / bucket).floor() as usize + 1;
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); n];
    for (x, y) in &pts {
        let b = ((x / bucket).floor() as usize).min(n - 1);
        per[b].push(*y);
    }
    let line: Vec<String> = per
        .iter_mut()
        .enumerate()
        .filter(|(_, v)| !v.is_empty())
        .map(|(i, v)| {
            v.sort_unstable_by(f64::total_cmp);
            let x = (i as f64 + 0.5) * bucket;
            format!("{:.1},{:.1}", f.px(x.min(f.x1)), f.py(percentile(v, 50.0)))
        })
        .collect();
    let _ = write!(
        out,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\
         <text x=\"{}\" y=\"{}\" {TL} text-anchor=\"end\">dots: requests; line: median per {} s</text></svg>",
        line.join(" "),
        COLORS[1],
        W - MR,
        MT - 12.0,
        fmt_num(bucket)
    );
}

/// A time bucket giving about 50 buckets over `span` seconds: 0.1, 0.2, 0.5, 1, 2, 5 … s.
pub(super) fn bucket_size(span: f64) -> f64 {
    nice_step((span / 50.0).max(0.1))
}

/// Output tokens per second over the run, from each token event's arrival time (an event
/// counts `output_tokens / token_events` tokens, so usage-reported counts are respected).
pub(super) fn tokens_over_time(out: &mut String, title: &str, records: &[Record]) {
    // The last token event of each request, then each event binned where it falls.
    let end = records
        .iter()
        .filter_map(|r| {
            let ttft = r.ttft_us?;
            let last = r
                .itl_us
                .iter()
                .fold(r.sent_us + ttft, |t, g| t + u64::from(*g));
            Some(last as f64 / 1e6)
        })
        .reduce(f64::max);
    let Some(end) = end else {
        empty_chart(out, title, "no token events");
        return;
    };
    let bucket = bucket_size(end);
    let n = (end / bucket).floor() as usize + 1;
    let mut sums = vec![0.0; n];
    for r in records {
        let Some(ttft) = r.ttft_us else { continue };
        let weight = if r.token_events > 0 {
            r.output_tokens as f64 / r.token_events as f64
        } else {
            1.0
        };
        let mut add =
            |t: u64| sums[((t as f64 / 1e6 / bucket).floor() as usize).min(n - 1)] += weight;
        let mut t = r.sent_us + ttft;
        add(t);
        for g in r.itl_us.iter() {
            t += u64::from(*g);
            add(t);
        }
    }
    let pts: Vec<(f64, f64)> = sums
        .iter()
        .enumerate()
        .map(|(i, s)| ((i as f64 + 0.5) * bucket, s / bucket))
        .collect();
    line_chart(
        out,
        title,
        "time since start (s)",
        "output tokens/s",
        &[Series {
            name: format!("per {} s", fmt_num(bucket)),
            points: pts,
            dashed: false,
        }],
    );
}
