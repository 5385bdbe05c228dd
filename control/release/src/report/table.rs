//! The table of steps: per step its weight, window and verdict, a row per variant with its
//! figures, and each gate's value against its limit.

use std::fmt::Write as _;

use crate::record::{GateResult, ReleaseRecord, StepRecord, VariantWindow};

use super::text::{duration, error_rate, escape, gate_figure, ms, percent, utc, DASH};

const HEAD: &str = "<table class=\"steps\"><thead><tr>\
<th rowspan=\"2\">step</th><th rowspan=\"2\">canary weight</th><th rowspan=\"2\">window</th>\
<th rowspan=\"2\">verdict</th><th rowspan=\"2\">variant</th><th rowspan=\"2\">requests</th>\
<th rowspan=\"2\">errors</th><th colspan=\"3\">TTFT</th><th colspan=\"3\">TPOT</th>\
<th rowspan=\"2\">gates</th></tr><tr><th>p50</th><th>p95</th><th>p99</th>\
<th>p50</th><th>p95</th><th>p99</th></tr></thead><tbody>";

/// The whole table, or a sentence when no step has started.
pub(super) fn steps(out: &mut String, r: &ReleaseRecord) {
    if r.steps.is_empty() {
        out.push_str("<p class=\"none\">No step has started yet.</p>");
        return;
    }
    out.push_str(HEAD);
    for s in &r.steps {
        step(out, r, s);
    }
    out.push_str("</tbody></table>");
}

fn step(out: &mut String, r: &ReleaseRecord, s: &StepRecord) {
    let verdict_class = match s.verdict.as_str() {
        "pass" => "pass",
        "fail" => "fail",
        _ => "pending",
    };
    let window = if s.window_s > 0.0 {
        duration(s.window_s)
    } else {
        DASH.to_owned()
    };
    let judged = s
        .judged_at_ms
        .map_or_else(|| "not judged yet".to_owned(), utc);
    let _ = write!(
        out,
        "<tr class=\"step {verdict_class}\"><td rowspan=\"2\">{}</td><td rowspan=\"2\">{} %</td>\
         <td rowspan=\"2\" title=\"started {}; judged: {}\">{}</td>\
         <td rowspan=\"2\" class=\"verdict {verdict_class}\">{}</td>",
        s.index + 1,
        s.canary_weight,
        utc(s.started_at_ms),
        escape(&judged),
        escape(&window),
        escape(&s.verdict),
    );
    variant(out, &r.stable, "stable", &s.stable);
    let _ = write!(out, "<td rowspan=\"2\" class=\"gates\">");
    gates(out, &s.gates);
    out.push_str("</td></tr><tr class=\"canary\">");
    variant(out, &r.canary, "canary", &s.canary);
    out.push_str("</tr>");
}

fn variant(out: &mut String, name: &str, role: &str, w: &VariantWindow) {
    let errors = if w.requests == 0 {
        DASH.to_owned()
    } else {
        format!(
            "{} ({})",
            w.errors,
            percent(error_rate(w.requests, w.error_rate))
        )
    };
    // The variant's name, and its role when the name does not say it.
    let shown = if name == role {
        escape(name)
    } else {
        format!("{} <small>({role})</small>", escape(name))
    };
    let _ = write!(
        out,
        "<td class=\"{role}\"><span class=\"swatch {role}\"></span>{shown}</td>\
         <td class=\"n\">{}</td><td class=\"n\">{}</td>",
        w.requests,
        escape(&errors),
    );
    for q in [&w.ttft_s, &w.tpot_s] {
        for v in [q.p50, q.p95, q.p99] {
            let _ = write!(out, "<td class=\"n\">{}</td>", ms(v));
        }
    }
}

fn gates(out: &mut String, gates: &[GateResult]) {
    if gates.is_empty() {
        out.push_str(DASH);
        return;
    }
    out.push_str("<ul>");
    for g in gates {
        let (class, word) = if g.pass {
            ("pass", "✓ pass")
        } else {
            ("fail", "✗ fail")
        };
        let _ = write!(
            out,
            "<li class=\"gate {class}\"><b>{}</b> {} <span class=\"limit\">limit {}</span> \
             <span class=\"verdict {class}\">{word}</span>",
            escape(&g.name),
            escape(&gate_figure(&g.name, g.value)),
            escape(&gate_figure(&g.name, g.limit)),
        );
        if !g.detail.is_empty() {
            let _ = write!(out, "<br><small>{}</small>", escape(&g.detail));
        }
        out.push_str("</li>");
    }
    out.push_str("</ul>");
}
