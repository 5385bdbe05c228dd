//! The charts of one step: latency histograms and time series.

use std::fmt::Write as _;

use crate::bench::output::{escape, Document, Step};
use crate::bench::record::Record;

use super::histogram::histogram;
use super::timeline::{tokens_over_time, ttft_over_time};

pub(super) fn step_charts(o: &mut String, doc: &Document, step: &Step) {
    let suffix = if doc.steps.len() > 1 {
        format!(" — {}", step.load.describe())
    } else {
        String::new()
    };
    let _ = write!(
        o,
        "<h2>{}</h2><div class=\"charts\">",
        escape(&if doc.steps.len() > 1 {
            format!("Step {}: {}", step.index + 1, step.load.describe())
        } else {
            format!("Run: {}", step.load.describe())
        })
    );
    let ok: Vec<&Record> = step.records.iter().filter(|r| r.ok()).collect();
    let ttft: Vec<f64> = ok
        .iter()
        .filter_map(|r| r.ttft_us.map(|t| t as f64 / 1000.0))
        .collect();
    let tpot: Vec<f64> = ok
        .iter()
        .filter_map(|r| r.tpot_us().map(|t| t / 1000.0))
        .collect();
    let e2e: Vec<f64> = ok.iter().map(|r| r.e2e_us as f64 / 1000.0).collect();
    histogram(o, &format!("TTFT distribution{suffix}"), "TTFT (ms)", &ttft);
    histogram(o, &format!("TPOT distribution{suffix}"), "TPOT (ms)", &tpot);
    histogram(
        o,
        &format!("E2E latency distribution{suffix}"),
        "E2E latency (ms)",
        &e2e,
    );
    ttft_over_time(o, &format!("TTFT over time{suffix}"), &step.records);
    tokens_over_time(
        o,
        &format!("Output tokens/s over time{suffix}"),
        &step.records,
    );
    o.push_str("</div>");
}
