//! The page: head and style, the headline (state and reason), the summary, the steps table and
//! the charts.

use std::fmt::Write as _;

use crate::record::ReleaseRecord;

use super::text::{duration, escape, utc, DASH};
use super::{charts, table, weights};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;\
padding:0 1rem;color:#222}h1{margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}\
.state{display:inline-block;padding:.2rem .7rem;border-radius:.3rem;font-weight:600;color:#fff;\
background:#666}.state.promoted{background:#2e7d32}.state.rolled_back,.state.aborted{\
background:#c62828}.state.running,.state.warming{background:#1565c0}.state.paused{background:#ef6c00}\
.reason{font-size:1.1rem}dl.summary{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}\
dl.summary dt{font-weight:600}table.steps{border-collapse:collapse;font-size:.9rem}\
table.steps th,table.steps td{border:1px solid #ddd;padding:.3rem .5rem;vertical-align:top}\
table.steps th{background:#f5f5f5}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.verdict.pass{color:#2e7d32;font-weight:600}.verdict.fail{color:#c62828;font-weight:600}\
.verdict.pending{color:#666}td.gates ul{margin:0;padding-left:1rem}td.gates small{color:#555}\
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}\
.swatch.stable{background:#4e79a7}.swatch.canary{background:#f28e2b}.limit{color:#555}\
.charts{display:flex;flex-wrap:wrap;gap:1rem}svg.chart{border:1px solid #eee;max-width:100%;\
height:auto}footer{margin-top:2rem;color:#777;font-size:.8rem}";

/// The state in words.
pub(super) fn state_words(state: &str) -> String {
    match state {
        "pending" => "Pending".into(),
        "warming" => "Warming the canary".into(),
        "running" => "Running".into(),
        "paused" => "Paused".into(),
        "promoted" => "Promoted".into(),
        "rolled_back" => "Rolled back".into(),
        "aborted" => "Aborted".into(),
        other => other.to_owned(),
    }
}

/// The sentence under the headline: what the release did, with the step that decided it.
fn outcome(r: &ReleaseRecord) -> String {
    let canary = escape(&r.canary);
    let model = escape(&r.model);
    let failed = r.steps.iter().rev().find(|s| s.verdict == "fail");
    match r.state.as_str() {
        "promoted" => {
            format!("The canary <b>{canary}</b> of model <b>{model}</b> now takes all traffic.")
        }
        "rolled_back" => match failed {
            Some(s) => format!(
                "The canary <b>{canary}</b> failed step {} at {} % and was taken back to 0 %.",
                s.index + 1,
                s.canary_weight
            ),
            None => format!("The canary <b>{canary}</b> was taken back to 0 %."),
        },
        "aborted" => format!("The release was aborted; the canary <b>{canary}</b> is back to 0 %."),
        _ => match r
            .current_step
            .and_then(|i| r.steps.iter().find(|s| s.index == i))
        {
            Some(s) => format!(
                "Step {} of the canary <b>{canary}</b> at {} %.",
                s.index + 1,
                s.canary_weight
            ),
            None => format!("The canary <b>{canary}</b> of model <b>{model}</b>."),
        },
    }
}

fn summary(out: &mut String, r: &ReleaseRecord) {
    let ended = r.ended_at_ms.map_or_else(|| DASH.to_owned(), utc);
    let took = r.ended_at_ms.map_or_else(
        || DASH.to_owned(),
        |e| duration(e.saturating_sub(r.started_at_ms) as f64 / 1000.0),
    );
    let judged = r.steps.iter().filter(|s| s.verdict != "pending").count();
    let rows = [
        ("release", escape(&r.name)),
        ("model", escape(&r.model)),
        ("stable variant", escape(&r.stable)),
        ("canary variant", escape(&r.canary)),
        ("state", escape(&r.state)),
        ("started", utc(r.started_at_ms)),
        ("ended", ended),
        ("took", took),
        (
            "steps judged",
            format!("{judged} of {} started", r.steps.len()),
        ),
    ];
    out.push_str("<dl class=\"summary\">");
    for (k, v) in rows {
        let _ = write!(out, "<dt>{k}</dt><dd>{v}</dd>");
    }
    out.push_str("</dl>");
}

/// The whole page.
pub(super) fn render(r: &ReleaseRecord) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let name = escape(&r.name);
    let state = state_words(&r.state);
    let class: String = r
        .state
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Release {name}: {}</title><style>{STYLE}</style></head><body>\
         <header><h1>Release {name}</h1><p><span class=\"state {class}\">{}</span> {}</p>",
        escape(&state),
        escape(&state),
        outcome(r)
    );
    if let Some(reason) = &r.reason {
        let _ = write!(out, "<p class=\"reason\">Reason: {}</p>", escape(reason));
    }
    out.push_str("</header><section><h2>Summary</h2>");
    summary(&mut out, r);
    out.push_str("</section><section><h2>Steps</h2>");
    table::steps(&mut out, r);
    out.push_str(
        "</section><section><h2>Stable against canary</h2><p>Each step's window, with the \
         limit the canary was held to (dashed).</p><div class=\"charts\">",
    );
    charts::all(&mut out, r);
    out.push_str("</div></section><section><h2>Weights over time</h2><div class=\"charts\">");
    weights::chart(&mut out, r);
    out.push_str(
        "</div></section><footer>infergate release report: one self-contained file (no script, \
         no external asset).</footer></body></html>\n",
    );
    out
}
