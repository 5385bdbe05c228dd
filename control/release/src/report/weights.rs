//! The weights over time: a step chart of the stable and canary weights sent to the gateways,
//! with each step's judgement marked where it happened.

use std::fmt::Write as _;

use crate::record::ReleaseRecord;

use super::svg::{self, Frame, CANARY, H, LIMIT, MB, MT, PASS, SMALL, STABLE};
use super::text::{duration, escape};

/// When the chart ends: the release's end, else its latest recorded moment.
fn end_ms(r: &ReleaseRecord) -> u64 {
    let latest = r
        .weights
        .iter()
        .map(|w| w.at_ms)
        .chain(r.steps.iter().map(|s| s.started_at_ms))
        .chain(r.steps.iter().filter_map(|s| s.judged_at_ms))
        .max()
        .unwrap_or(r.started_at_ms);
    r.ended_at_ms.unwrap_or(latest).max(latest)
}

/// The step chart; a release that has sent no weights yet gets a note instead.
pub(super) fn chart(out: &mut String, r: &ReleaseRecord) {
    let title = "Weights over time";
    let Some(first) = r.weights.first() else {
        svg::empty(out, title, "no weights sent yet");
        return;
    };
    let t0 = r.started_at_ms.min(first.at_ms);
    let end = end_ms(r).max(t0 + 1000);
    let secs = |ms: u64| ms.saturating_sub(t0) as f64 / 1000.0;
    let (x0, x1, xt) = svg::nice_ticks(0.0, secs(end), 6);
    let (y0, y1, yt) = svg::nice_ticks(0.0, 100.0, 5);
    let f = Frame { x0, x1, y0, y1 };
    // An ended release keeps its last weights: the line runs to the axis's end. A running
    // one is drawn up to its latest recorded moment.
    let last_x = if r.ended_at_ms.is_some() {
        x1
    } else {
        secs(end)
    };
    svg::open(out, title, H);
    svg::y_axis(out, &f, &yt, "weight (%)");
    for v in &xt {
        let x = f.px(*v);
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{b}\" y2=\"{:.1}\" stroke=\"#888\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" {SMALL} text-anchor=\"middle\">{}</text>",
            H - MB + 5.0,
            H - MB + 18.0,
            escape(&duration(*v)),
            b = H - MB,
        );
    }
    let _ = write!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#222\" text-anchor=\"middle\">\
         time since the release started</text>",
        f.px((x0 + x1) / 2.0),
        H - 10.0
    );
    svg::legend(out, &[("stable", STABLE, false), ("canary", CANARY, false)]);
    for (name, color, pick) in [("stable", STABLE, 0usize), ("canary", CANARY, 1usize)] {
        let series: Vec<(f64, f64)> = r
            .weights
            .iter()
            .map(|w| {
                let v = if pick == 0 { w.stable } else { w.canary };
                (secs(w.at_ms), f64::from(v))
            })
            .collect();
        let mut points = Vec::with_capacity(series.len() * 2 + 1);
        let mut prev: Option<f64> = None;
        for (t, v) in &series {
            if let Some(p) = prev {
                points.push(format!("{:.1},{:.1}", f.px(*t), f.py(p)));
            }
            points.push(format!("{:.1},{:.1}", f.px(*t), f.py(*v)));
            prev = Some(*v);
        }
        if let Some(p) = prev {
            points.push(format!("{:.1},{:.1}", f.px(last_x), f.py(p)));
        }
        let _ = write!(
            out,
            "<polyline class=\"weights\" points=\"{}\" fill=\"none\" stroke=\"{color}\" \
             stroke-width=\"2.5\"><title>{name}</title></polyline>",
            points.join(" ")
        );
        for (t, v) in &series {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"><title>{name} {v} % \
                 from {}</title></circle>",
                f.px(*t),
                f.py(*v),
                escape(&duration(*t))
            );
        }
    }
    for s in &r.steps {
        let Some(at) = s.judged_at_ms else { continue };
        let x = f.px(secs(at));
        let (color, word) = match s.verdict.as_str() {
            "pass" => (PASS, "pass"),
            "fail" => (LIMIT, "fail"),
            _ => ("#666", "pending"),
        };
        let _ = write!(
            out,
            "<line class=\"judged\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{MT}\" y2=\"{:.1}\" \
             stroke=\"{color}\" stroke-dasharray=\"2 3\"><title>step {} ({} %) judged: {word}\
             </title></line>",
            H - MB,
            s.index + 1,
            s.canary_weight
        );
    }
    out.push_str("</svg>");
}
