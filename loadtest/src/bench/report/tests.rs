//! Tests of the report's charts.

use super::axis::{nice_ticks, tick_label};
use super::histogram::histogram;
use super::line_chart::{line_chart, Series};
use super::timeline::bucket_size;

#[test]
fn ticks() {
    let (lo, hi, t) = nice_ticks(3.0, 97.0, 5);
    assert_eq!((lo, hi), (0.0, 100.0));
    assert_eq!(t, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
    let (lo, hi, t) = nice_ticks(100.0, 100.0, 5);
    assert!(lo < 100.0 && hi > 100.0 && !t.is_empty());
    let (lo, hi, _) = nice_ticks(0.0, 0.0, 5);
    assert!(lo < 0.0 && hi > 0.0);
    assert_eq!(bucket_size(1.0), 0.1);
    assert_eq!(bucket_size(60.0), 2.0);
    assert_eq!(tick_label(25_000.0), "25k");
}

#[test]
fn charts_are_svg_with_titles() {
    let mut o = String::new();
    histogram(&mut o, "TTFT <x>", "ms", &[1.0, 2.0, 2.5, 100.0]);
    assert!(o.starts_with("<svg"));
    assert!(o.contains("<title>TTFT &lt;x&gt;</title>"));
    assert!(o.ends_with("</svg>"));
    let mut o = String::new();
    histogram(&mut o, "empty", "ms", &[]);
    assert!(o.contains("no values") && o.ends_with("</svg>"));
    let mut o = String::new();
    line_chart(
        &mut o,
        "L",
        "x",
        "y",
        &[Series {
            name: "s".into(),
            points: vec![(1.0, 2.0), (2.0, f64::NAN), (4.0, 3.0)],
            dashed: true,
        }],
    );
    assert!(o.contains("<polyline") && o.ends_with("</svg>"));
    assert!(!o.contains("NaN"));
}
