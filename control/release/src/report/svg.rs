//! Hand-written SVG: chart frames, axes with "nice" ticks, titles, legends. Presentation
//! attributes are inline, so a chart copied out of the page keeps its look.

use std::fmt::Write as _;

use super::text::{escape, num};

pub(super) const W: f64 = 560.0;
pub(super) const H: f64 = 280.0;
/// Margins: left, right, top, bottom.
pub(super) const ML: f64 = 64.0;
pub(super) const MR: f64 = 16.0;
pub(super) const MT: f64 = 48.0;
pub(super) const MB: f64 = 52.0;
pub(super) const FONT: &str = "font-family=\"system-ui, sans-serif\"";
pub(super) const SMALL: &str = "font-size=\"11\" fill=\"#444\"";
pub(super) const STABLE: &str = "#4e79a7";
pub(super) const CANARY: &str = "#f28e2b";
pub(super) const LIMIT: &str = "#c62828";
pub(super) const PASS: &str = "#2e7d32";

/// The plot area's value ranges; maps values to pixels.
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

/// Ticks that cover `[lo, hi]` in about `n` steps of 1, 2 or 5 times a power of ten; the
/// range widened to the outer ticks.
pub(super) fn nice_ticks(lo: f64, hi: f64, n: usize) -> (f64, f64, Vec<f64>) {
    let (lo, hi) = if !(hi - lo).is_finite() || hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        (lo.min(0.0), if hi > 0.0 { hi * 1.1 } else { 1.0 })
    } else {
        (lo, hi)
    };
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = mag
        * match raw / mag {
            r if r <= 1.0 => 1.0,
            r if r <= 2.0 => 2.0,
            r if r <= 5.0 => 5.0,
            _ => 10.0,
        };
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut t = start;
    while t <= end + step * 1e-9 && ticks.len() < 50 {
        ticks.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    (start, end, ticks)
}

/// Opens an `<svg>` of `height` pixels with its title and a white background.
pub(super) fn open(out: &mut String, title: &str, height: f64) {
    let t = escape(title);
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {W} {height}\" \
         width=\"{W}\" height=\"{height}\" role=\"img\" aria-label=\"{t}\" {FONT}>\
         <title>{t}</title><rect width=\"{W}\" height=\"{height}\" fill=\"#fff\"/>\
         <text x=\"{}\" y=\"18\" font-size=\"14\" font-weight=\"600\" fill=\"#222\" \
         text-anchor=\"middle\">{t}</text>",
        W / 2.0
    );
}

/// A chart with nothing to draw: its title and why.
pub(super) fn empty(out: &mut String, title: &str, why: &str) {
    open(out, title, 80.0);
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"52\" {SMALL} text-anchor=\"middle\">{}</text></svg>",
        W / 2.0,
        escape(why)
    );
}

/// Horizontal grid lines with their labels, the axes, and the y axis's label.
pub(super) fn y_axis(out: &mut String, f: &Frame, ticks: &[f64], label: &str) {
    for v in ticks {
        let y = f.py(*v);
        let _ = write!(
            out,
            "<line x1=\"{ML}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e6e6e6\"/>\
             <text x=\"{}\" y=\"{:.1}\" {SMALL} text-anchor=\"end\">{}</text>",
            W - MR,
            ML - 6.0,
            y + 4.0,
            num(*v)
        );
    }
    let mid = (MT + H - MB) / 2.0;
    let _ = write!(
        out,
        "<line x1=\"{ML}\" x2=\"{}\" y1=\"{b}\" y2=\"{b}\" stroke=\"#888\"/>\
         <line x1=\"{ML}\" x2=\"{ML}\" y1=\"{MT}\" y2=\"{b}\" stroke=\"#888\"/>\
         <text x=\"14\" y=\"{mid}\" font-size=\"12\" fill=\"#222\" text-anchor=\"middle\" \
         transform=\"rotate(-90 14 {mid})\">{}</text>",
        W - MR,
        escape(label),
        b = H - MB,
    );
}

/// A legend in the top margin: a swatch and a name per entry (`dashed` for a limit line).
pub(super) fn legend(out: &mut String, entries: &[(&str, &str, bool)]) {
    let mut x = ML;
    let y = MT - 18.0;
    for (name, color, dashed) in entries {
        let swatch = if *dashed {
            format!(
                "<line x1=\"{x:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{color}\" \
                 stroke-width=\"2\" stroke-dasharray=\"4 3\"/>",
                x + 16.0
            )
        } else {
            format!(
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"16\" height=\"10\" fill=\"{color}\"/>",
                y - 5.0
            )
        };
        let _ = write!(
            out,
            "{swatch}<text x=\"{:.1}\" y=\"{:.1}\" {SMALL}>{}</text>",
            x + 20.0,
            y + 4.0,
            escape(name)
        );
        x += 36.0 + 6.5 * name.chars().count() as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_the_range() {
        let (lo, hi, t) = nice_ticks(0.0, 212.0, 5);
        assert_eq!(lo, 0.0);
        assert!((212.0..=300.0).contains(&hi), "{hi}");
        assert_eq!(t.first().copied(), Some(0.0));
        assert!(t.len() >= 3 && t.len() <= 8, "{t:?}");
    }

    #[test]
    fn a_flat_range_still_has_ticks() {
        let (lo, hi, t) = nice_ticks(0.0, 0.0, 5);
        assert!(lo <= 0.0 && hi > 0.0);
        assert!(t.len() >= 2, "{t:?}");
        let (_, hi, _) = nice_ticks(0.0, f64::NEG_INFINITY, 5);
        assert!(hi.is_finite());
    }
}
