//! The report page: its head, configuration table and definitions, then the sections.

use std::fmt::Write as _;
use std::path::Path;

use crate::bench::output::{escape, slo_text, Document};
use crate::bench::spec::fmt_num;

use super::step::step_charts;
use super::sweep::sweep_charts;
use super::tables::summary_tables;

pub(super) const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1400px}\
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px}\
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f3f3f3}td.l,th.l{text-align:left}code{background:#f5f5f5;padding:1px 4px;word-break:break-all}\
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{border:1px solid #e3e3e3}\
.note{background:#fffbe6;border:1px solid #f0e0a0;padding:8px 12px;font-size:13px;max-width:1000px}";

/// Writes the report for `doc` to `path`.
pub fn write(doc: &Document, path: &Path) -> Result<(), String> {
    std::fs::write(path, render(doc)).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The whole report for `doc`.
pub fn render(doc: &Document) -> String {
    let mut o = String::with_capacity(1 << 18);
    let title = match &doc.label {
        Some(l) => format!("infergate-bench: {l}"),
        None => "infergate-bench report".to_owned(),
    };
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><style>{STYLE}</style></head><body>\
         <h1>{}</h1>",
        escape(&title),
        escape(&title)
    );
    let c = &doc.config;
    let _ = write!(
        o,
        "<p><code>{}</code></p><table>\
         <tr><th class=\"l\">started</th><td class=\"l\">{}</td></tr>\
         <tr><th class=\"l\">endpoint</th><td class=\"l\">{}</td></tr>\
         <tr><th class=\"l\">model / API</th><td class=\"l\">{} / {:?}</td></tr>\
         <tr><th class=\"l\">stop</th><td class=\"l\">{}</td></tr>\
         <tr><th class=\"l\">prompts</th><td class=\"l\">{}</td></tr>\
         <tr><th class=\"l\">output tokens</th><td class=\"l\">{}</td></tr>\
         <tr><th class=\"l\">warm-up, timeout, seed, threads</th><td class=\"l\">{} requests, {} s, {}, {}</td></tr>",
        escape(&doc.command_line.join(" ")),
        escape(&doc.started_at),
        escape(&c.endpoint),
        escape(&c.model),
        c.api,
        escape(&stop_text(c.requests, c.duration_s)),
        escape(&match (&c.dataset, &c.input_tokens) {
            (Some(d), _) => format!("dataset {d}"),
            (None, Some(i)) => format!("synthetic, {i} words (mean[:stddev])"),
            _ => "–".to_owned(),
        }),
        escape(&c.output_tokens.map_or_else(
            || "dataset / server default".to_owned(),
            |d| format!("{d} (max_tokens, ignore_eos {})", c.ignore_eos)
        )),
        c.warmup,
        fmt_num(c.timeout_s),
        c.seed,
        c.threads
    );
    if let Some(slo) = &c.slo {
        let _ = write!(
            o,
            "<tr><th class=\"l\">SLO</th><td class=\"l\">{}</td></tr>",
            escape(&slo_text(slo))
        );
    }
    o.push_str("</table>");
    o.push_str(
        "<p class=\"note\"><b>Definitions.</b> TTFT: from sending the request to the first SSE event \
         carrying a non-empty token delta (the role-only chunk does not count). <b>TPOT excludes the \
         first token and is averaged per request</b>: (last token event − first token event) / \
         (output tokens − 1), for requests with at least 2 output tokens, then each request counts \
         once (request-weighted), as in vLLM's benchmark_serving and inference-perf. Other tools \
         define it differently: guidellm's TPOT includes the first token ((last token − send) / N) \
         and is token-weighted; llmperf's \"inter-token latency\" includes the TTFT (E2E / N); \
         genai-perf/AIPerf call our TPOT \"ITL\". Here ITL is every gap between successive token \
         events, pooled over requests. E2E: send to the end of the response. Latency statistics \
         cover successful requests only; throughput counts successful requests over the step's \
         duration.</p>",
    );
    summary_tables(&mut o, doc);
    if doc.steps.len() > 1 {
        sweep_charts(&mut o, doc);
    }
    for step in &doc.steps {
        step_charts(&mut o, doc, step);
    }
    o.push_str("</body></html>\n");
    o
}

pub(super) fn stop_text(requests: Option<u64>, duration_s: Option<f64>) -> String {
    match (requests, duration_s) {
        (Some(n), Some(d)) => format!("{n} requests or {} s", fmt_num(d)),
        (Some(n), None) => format!("{n} requests"),
        (None, Some(d)) => format!("{} s", fmt_num(d)),
        (None, None) => "–".to_owned(),
    }
}
