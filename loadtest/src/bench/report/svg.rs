//! SVG chart frames: sizes, presentation attributes, axes and titles.

use std::fmt::Write as _;

use crate::bench::output::escape;

use super::axis::{nice_ticks, tick_label};

pub(super) const W: f64 = 640.0;
pub(super) const H: f64 = 300.0;
pub(super) const ML: f64 = 64.0;
pub(super) const MR: f64 = 20.0;
pub(super) const MT: f64 = 46.0;
pub(super) const MB: f64 = 46.0;
/// Presentation attributes (inline, so that an SVG copied out of the page keeps its look).
pub(super) const FONT: &str =
    "font-family=\"system-ui, -apple-system, Segoe UI, Roboto, sans-serif\"";
pub(super) const CT: &str = "font-size=\"14\" font-weight=\"600\" fill=\"#222\"";
pub(super) const TL: &str = "font-size=\"11\" fill=\"#444\"";
pub(super) const AL: &str = "font-size=\"12\" fill=\"#222\"";
pub(super) const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

pub(super) struct Frame {
    pub(super) x0: f64,
    pub(super) x1: f64,
    pub(super) y0: f64,
    pub(super) y1: f64,
}

impl Frame {
    pub(super) fn px(&self, x: f64) -> f64 {
        ML + (x - self.x0) / (self.x1 - self.x0) * (W - ML - MR)
    }
    pub(super) fn py(&self, y: f64) -> f64 {
        H - MB - (y - self.y0) / (self.y1 - self.y0) * (H - MT - MB)
    }
}

/// The SVG head, title and axes; returns the frame for plotting.
pub(super) fn open_chart(
    out: &mut String,
    title: &str,
    x_label: &str,
    y_label: &str,
    (xlo, xhi): (f64, f64),
    (ylo, yhi): (f64, f64),
) -> Frame {
    let (x0, x1, xt) = nice_ticks(xlo, xhi, 6);
    let (y0, y1, yt) = nice_ticks(ylo, yhi, 5);
    let f = Frame { x0, x1, y0, y1 };
    let t = escape(title);
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {W} {H}\" \
         width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{t}\" {FONT}><title>{t}</title>\
         <rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#fff\"/>\
         <text x=\"{}\" y=\"18\" {CT} text-anchor=\"middle\">{t}</text>",
        W / 2.0
    );
    for v in &yt {
        let y = f.py(*v);
        let _ = write!(
            out,
            "<line x1=\"{ML}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e6e6e6\"/>\
             <text x=\"{}\" y=\"{:.1}\" {TL} text-anchor=\"end\">{}</text>",
            W - MR,
            ML - 6.0,
            y + 4.0,
            tick_label(*v)
        );
    }
    for v in &xt {
        let x = f.px(*v);
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{}\" y2=\"{}\" stroke=\"#888\"/>\
             <text x=\"{x:.1}\" y=\"{}\" {TL} text-anchor=\"middle\">{}</text>",
            H - MB,
            H - MB + 5.0,
            H - MB + 18.0,
            tick_label(*v)
        );
    }
    let _ = write!(
        out,
        "<line x1=\"{ML}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#888\"/>\
         <line x1=\"{ML}\" x2=\"{ML}\" y1=\"{MT}\" y2=\"{}\" stroke=\"#888\"/>\
         <text x=\"{}\" y=\"{}\" {AL} text-anchor=\"middle\">{}</text>\
         <text x=\"14\" y=\"{}\" {AL} text-anchor=\"middle\" transform=\"rotate(-90 14 {})\">{}</text>",
        W - MR,
        H - MB,
        H - MB,
        H - MB,
        (ML + W - MR) / 2.0,
        H - 8.0,
        escape(x_label),
        (MT + H - MB) / 2.0,
        (MT + H - MB) / 2.0,
        escape(y_label)
    );
    f
}

pub(super) fn empty_chart(out: &mut String, title: &str, why: &str) {
    let t = escape(title);
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {W} 80\" \
         width=\"{W}\" height=\"80\" role=\"img\" aria-label=\"{t}\" {FONT}><title>{t}</title>\
         <text x=\"{}\" y=\"24\" {CT} text-anchor=\"middle\">{t}</text>\
         <text x=\"{}\" y=\"54\" {TL} text-anchor=\"middle\">{}</text></svg>",
        W / 2.0,
        W / 2.0,
        escape(why)
    );
}
