//! The summary tables: one row per step, and the errors seen.

use std::fmt::Write as _;

use crate::bench::output::{escape, Document};
use crate::bench::record::Kind;
use crate::bench::spec::fmt_num;
use crate::bench::stats::Stats;

pub(super) fn td(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |x| fmt_num((x * 100.0).round() / 100.0))
}

pub(super) fn pair(s: Option<&Stats>) -> (String, String) {
    (td(s.map(|s| s.p50)), td(s.map(|s| s.p99)))
}

pub(super) fn summary_tables(o: &mut String, doc: &Document) {
    o.push_str(
        "<h2>Summary</h2><table><tr><th class=\"l\">step</th><th>duration s</th><th>ok</th><th>failed</th>\
         <th>req/s</th><th>input tok/s</th><th>output tok/s</th><th>TTFT p50</th><th>TTFT p99</th><th>TPOT p50</th>\
         <th>TPOT p99</th><th>ITL p50</th><th>ITL p99</th><th>E2E p50</th><th>E2E p99</th>\
         <th>send lag mean</th><th>send lag p99</th><th>send lag max</th><th>goodput req/s</th><th>SLO met %</th></tr>",
    );
    for s in &doc.steps {
        let m = &s.summary;
        let (t50, t99) = pair(m.ttft_ms.as_ref());
        let (p50, p99) = pair(m.tpot_ms.as_ref());
        let (i50, i99) = pair(m.itl_ms.as_ref());
        let (e50, e99) = pair(m.e2e_ms.as_ref());
        let _ = write!(
            o,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{t50}</td><td>{t99}</td><td>{p50}</td><td>{p99}</td><td>{i50}</td><td>{i99}</td><td>{e50}</td><td>{e99}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.load.describe()),
            td(Some(m.duration_s)),
            m.requests.ok,
            m.requests.failed,
            td(Some(m.throughput.requests_per_s)),
            td(Some(m.throughput.input_tokens_per_s)),
            td(Some(m.throughput.output_tokens_per_s)),
            td(Some(m.send_lag_ms.mean)),
            td(Some(m.send_lag_ms.p99)),
            td(Some(m.send_lag_ms.max)),
            td(m.goodput.map(|g| g.requests_per_s)),
            td(m.goodput.map(|g| g.attainment_pct)),
        );
    }
    o.push_str("</table><p>Latencies in milliseconds.</p>");
    o.push_str("<h3>Latency distributions (ms)</h3><table><tr><th class=\"l\">step</th><th class=\"l\">metric</th><th>count</th><th>mean</th><th>min</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>max</th></tr>");
    for s in &doc.steps {
        let m = &s.summary;
        for (name, st) in [
            ("TTFT", &m.ttft_ms),
            ("TPOT", &m.tpot_ms),
            ("ITL", &m.itl_ms),
            ("E2E", &m.e2e_ms),
        ] {
            match st {
                Some(x) => {
                    let _ = write!(
                        o,
                        "<tr><td class=\"l\">{}</td><td class=\"l\">{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        escape(&s.load.describe()),
                        x.count,
                        td(Some(x.mean)),
                        td(Some(x.min)),
                        td(Some(x.p50)),
                        td(Some(x.p90)),
                        td(Some(x.p95)),
                        td(Some(x.p99)),
                        td(Some(x.max))
                    );
                }
                None => {
                    let _ = write!(
                        o,
                        "<tr><td class=\"l\">{}</td><td class=\"l\">{name}</td><td>0</td><td colspan=\"7\">–</td></tr>",
                        escape(&s.load.describe())
                    );
                }
            }
        }
    }
    o.push_str("</table>");
    o.push_str("<h3>Requests by outcome</h3><table><tr><th class=\"l\">step</th><th>ok</th>");
    for k in Kind::ERRORS {
        let _ = write!(o, "<th>{}</th>", k.as_str());
    }
    o.push_str("</tr>");
    for s in &doc.steps {
        let _ = write!(
            o,
            "<tr><td class=\"l\">{}</td><td>{}</td>",
            escape(&s.load.describe()),
            s.summary.requests.ok
        );
        for k in Kind::ERRORS {
            let _ = write!(o, "<td>{}</td>", s.summary.errors.get(k));
        }
        o.push_str("</tr>");
    }
    o.push_str("</table>");
    let mut shown = 0;
    for s in &doc.steps {
        for r in s.records.iter().filter(|r| r.error.is_some()) {
            if shown == 0 {
                o.push_str("<h3>First errors</h3><table><tr><th class=\"l\">step</th><th>id</th><th class=\"l\">kind</th><th class=\"l\">error</th></tr>");
            }
            let _ = write!(
                o,
                "<tr><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
                escape(&s.load.describe()),
                r.id,
                r.kind.as_str(),
                escape(r.error.as_deref().unwrap_or(""))
            );
            shown += 1;
            if shown >= 10 {
                break;
            }
        }
        if shown >= 10 {
            break;
        }
    }
    if shown > 0 {
        o.push_str("</table>");
    }
}
