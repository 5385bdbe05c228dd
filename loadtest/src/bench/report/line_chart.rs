//! Line charts.

use std::fmt::Write as _;

use crate::bench::output::escape;
use crate::bench::spec::fmt_num;

use super::svg::{empty_chart, open_chart, COLORS, ML, MT, TL};

/// One line (with markers) of a line chart.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

pub fn line_chart(out: &mut String, title: &str, x_label: &str, y_label: &str, series: &[Series]) {
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if all.is_empty() {
        empty_chart(out, title, "no values");
        return;
    }
    let xlo = all.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let xhi = all.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let yhi = all.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let ylo = all
        .iter()
        .map(|p| p.1)
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let f = open_chart(out, title, x_label, y_label, (xlo, xhi), (ylo, yhi));
    let mut lx = ML;
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<String> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|(x, y)| format!("{:.1},{:.1}", f.px(*x), f.py(*y)))
            .collect();
        let dash = if s.dashed {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>",
            pts.join(" ")
        );
        for (x, y) in s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
        {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"><title>{}: {} at {}</title></circle>",
                f.px(*x),
                f.py(*y),
                escape(&s.name),
                fmt_num(*y),
                fmt_num(*x)
            );
        }
        // Legend: left to right in the top margin.
        let ly = MT - 16.0;
        let _ = write!(
            out,
            "<line x1=\"{lx:.1}\" x2=\"{:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>\
             <text x=\"{:.1}\" y=\"{:.1}\" {TL}>{}</text>",
            lx + 18.0,
            lx + 22.0,
            ly + 4.0,
            escape(&s.name)
        );
        lx += 40.0 + 6.5 * s.name.chars().count() as f64;
    }
    out.push_str("</svg>");
}
