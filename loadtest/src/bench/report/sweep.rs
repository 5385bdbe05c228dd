//! The charts of a sweep: throughput and latencies against the rate or concurrency.

use crate::bench::output::{Document, Step};
use crate::bench::runner::Load;
use crate::bench::stats::Stats;

use super::line_chart::{line_chart, Series};

pub(super) fn sweep_charts(o: &mut String, doc: &Document) {
    let by_rate = matches!(doc.steps.first().map(|s| s.load), Some(Load::Rate { .. }));
    let (x, xl) = if by_rate {
        ("rate", "request rate (req/s)")
    } else {
        ("concurrency", "concurrency")
    };
    o.push_str("<h2>Sweep</h2><div class=\"charts\">");
    let pts = |f: &dyn Fn(&Step) -> Option<f64>| -> Vec<(f64, f64)> {
        doc.steps
            .iter()
            .filter_map(|s| f(s).map(|y| (s.load.value(), y)))
            .collect()
    };
    let mut thr = vec![Series {
        name: "requests/s".into(),
        points: pts(&|s| Some(s.summary.throughput.requests_per_s)),
        dashed: false,
    }];
    if doc.steps.iter().any(|s| s.summary.goodput.is_some()) {
        thr.push(Series {
            name: "goodput req/s".into(),
            points: pts(&|s| s.summary.goodput.map(|g| g.requests_per_s)),
            dashed: true,
        });
    }
    if by_rate {
        thr.push(Series {
            name: "offered rate".into(),
            points: pts(&|s| Some(s.load.value())),
            dashed: true,
        });
    }
    line_chart(o, &format!("Throughput vs {x}"), xl, "requests/s", &thr);
    line_chart(
        o,
        &format!("Output token throughput vs {x}"),
        xl,
        "output tokens/s",
        &[Series {
            name: "output tokens/s".into(),
            points: pts(&|s| Some(s.summary.throughput.output_tokens_per_s)),
            dashed: false,
        }],
    );
    type Pick = fn(&Step) -> Option<Stats>;
    let metrics: [(&str, Pick); 4] = [
        ("TTFT", |s| s.summary.ttft_ms),
        ("TPOT", |s| s.summary.tpot_ms),
        ("ITL", |s| s.summary.itl_ms),
        ("E2E latency", |s| s.summary.e2e_ms),
    ];
    for (name, pick) in metrics {
        line_chart(
            o,
            &format!("{name} vs {x}"),
            xl,
            &format!("{name} (ms)"),
            &[
                Series {
                    name: "p50".into(),
                    points: pts(&|s| pick(s).map(|v| v.p50)),
                    dashed: false,
                },
                Series {
                    name: "p99".into(),
                    points: pts(&|s| pick(s).map(|v| v.p99)),
                    dashed: true,
                },
            ],
        );
    }
    o.push_str("</div>");
}
