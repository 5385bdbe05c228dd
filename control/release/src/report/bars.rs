//! Grouped bar charts: stable against canary per step, with the gate's limit over the canary's
//! bar and each step's verdict under its label.

use std::fmt::Write as _;

use super::svg::{self, Frame, CANARY, H, LIMIT, MB, ML, MR, PASS, SMALL, STABLE, W};
use super::text::{escape, num, DASH};

/// One step's group of bars. Values are already in the chart's unit.
pub(super) struct Group {
    /// Under the group, e.g. "1 · 10 %".
    pub(super) label: String,
    /// `pass`, `fail` or `pending`.
    pub(super) verdict: String,
    pub(super) stable: Option<f64>,
    pub(super) canary: Option<f64>,
    /// The gate's limit for the canary, if the step was judged on it.
    pub(super) limit: Option<f64>,
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

/// Draws the chart; a chart with no value at all says so instead.
pub(super) fn chart(out: &mut String, title: &str, unit: &str, groups: &[Group]) {
    let values: Vec<f64> = groups
        .iter()
        .flat_map(|g| [g.stable, g.canary, g.limit])
        .filter_map(finite)
        .collect();
    if groups.is_empty() || values.is_empty() {
        svg::empty(out, title, "no samples in any step yet");
        return;
    }
    let hi = values.iter().copied().fold(0.0, f64::max);
    let (y0, y1, ticks) = svg::nice_ticks(0.0, hi, 5);
    let f = Frame {
        x0: 0.0,
        x1: groups.len() as f64,
        y0,
        y1,
    };
    svg::open(out, title, H);
    svg::y_axis(out, &f, &ticks, unit);
    svg::legend(
        out,
        &[
            ("stable", STABLE, false),
            ("canary", CANARY, false),
            ("canary's limit", LIMIT, true),
        ],
    );
    let group_w = (W - ML - MR) / groups.len() as f64;
    let bar_w = (group_w * 0.32).min(48.0);
    let base = H - MB;
    for (i, g) in groups.iter().enumerate() {
        let mid = f.px(i as f64 + 0.5);
        for (name, value, color, x) in [
            ("stable", g.stable, STABLE, mid - bar_w - 1.0),
            ("canary", g.canary, CANARY, mid + 1.0),
        ] {
            match finite(value) {
                Some(v) => {
                    let top = f.py(v).min(base - 1.5);
                    let _ = write!(
                        out,
                        "<rect class=\"bar\" x=\"{x:.1}\" y=\"{top:.1}\" width=\"{bar_w:.1}\" \
                         height=\"{:.1}\" fill=\"{color}\"><title>{} {name}: {} {}</title></rect>",
                        // A zero stays visible as a thin bar on the axis.
                        (base - top).max(1.5),
                        escape(&g.label),
                        num(v),
                        escape(unit)
                    );
                }
                None => {
                    let _ = write!(
                        out,
                        "<text x=\"{:.1}\" y=\"{:.1}\" {SMALL} text-anchor=\"middle\">{DASH}\
                         <title>{} {name}: no samples</title></text>",
                        x + bar_w / 2.0,
                        base - 4.0,
                        escape(&g.label)
                    );
                }
            }
        }
        if let Some(l) = finite(g.limit) {
            let y = f.py(l);
            let _ = write!(
                out,
                "<line class=\"limit\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" \
                 stroke=\"{LIMIT}\" stroke-width=\"2\" stroke-dasharray=\"4 3\">\
                 <title>{} canary's limit: {} {}</title></line>",
                mid - 3.0,
                mid + bar_w + 5.0,
                escape(&g.label),
                num(l),
                escape(unit)
            );
        }
        let (mark, color) = match g.verdict.as_str() {
            "pass" => ("✓ pass", PASS),
            "fail" => ("✗ fail", LIMIT),
            _ => ("… pending", "#666"),
        };
        let _ = write!(
            out,
            "<text x=\"{mid:.1}\" y=\"{:.1}\" {SMALL} text-anchor=\"middle\">{}</text>\
             <text x=\"{mid:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"{color}\" \
             text-anchor=\"middle\">{mark}</text>",
            base + 16.0,
            escape(&g.label),
            base + 30.0,
        );
    }
    out.push_str("</svg>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(stable: Option<f64>, canary: Option<f64>, limit: Option<f64>) -> Group {
        Group {
            label: "1 · 10 %".into(),
            verdict: "fail".into(),
            stable,
            canary,
            limit,
        }
    }

    #[test]
    fn draws_both_bars_and_the_limit() {
        let mut out = String::new();
        chart(
            &mut out,
            "TTFT p95",
            "ms",
            &[group(Some(100.0), Some(200.0), Some(150.0))],
        );
        assert_eq!(out.matches("<rect class=\"bar\"").count(), 2, "{out}");
        assert_eq!(out.matches("class=\"limit\"").count(), 1, "{out}");
        assert!(out.contains("✗ fail"));
        assert!(out.ends_with("</svg>"));
    }

    #[test]
    fn missing_values_show_a_dash() {
        let mut out = String::new();
        chart(
            &mut out,
            "TTFT p95",
            "ms",
            &[group(Some(100.0), None, None)],
        );
        assert_eq!(out.matches("<rect class=\"bar\"").count(), 1, "{out}");
        assert!(out.contains("canary: no samples"), "{out}");
        let mut empty = String::new();
        chart(&mut empty, "TTFT p95", "ms", &[group(None, None, None)]);
        assert!(empty.contains("no samples in any step yet"), "{empty}");
        assert!(!empty.contains("<rect class=\"bar\""));
    }
}
