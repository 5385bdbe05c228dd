//! The HTML report: one self-contained file (inline CSS and SVG, no script, no external
//! asset) with the summary tables and charts: per step the TTFT, TPOT and E2E histograms and
//! a time series of the run (TTFT per request and output tokens/s); for a sweep, throughput and
//! p50/p99 latencies against the rate or concurrency.

use std::fmt::Write as _;
use std::path::Path;

use super::output::{escape, slo_text, Document, Step};
use super::record::{Kind, Record};
use super::runner::Load;
use super::spec::fmt_num;
use super::stats::{percentile, Stats};

const W: f64 = 640.0;
const H: f64 = 300.0;
const ML: f64 = 64.0;
const MR: f64 = 20.0;
const MT: f64 = 46.0;
const MB: f64 = 46.0;
/// Presentation attributes (inline, so that an SVG copied out of the page keeps its look).
const FONT: &str = "font-family=\"system-ui, -apple-system, Segoe UI, Roboto, sans-serif\"";
const CT: &str = "font-size=\"14\" font-weight=\"600\" fill=\"#222\"";
const TL: &str = "font-size=\"11\" fill=\"#444\"";
const AL: &str = "font-size=\"12\" fill=\"#222\"";
const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// Tick positions: a "nice" step covering `[lo, hi]` with about `n` ticks.
fn nice_ticks(lo: f64, hi: f64, n: usize) -> (f64, f64, Vec<f64>) {
    let (lo, hi) = if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.05 };
        (lo - pad, hi + pad)
    } else {
        (lo, hi)
    };
    let step = nice_step((hi - lo) / n.max(1) as f64);
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

fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", fmt_num(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", fmt_num(v / 1e3))
    } else {
        fmt_num((v * 1000.0).round() / 1000.0)
    }
}

struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        ML + (x - self.x0) / (self.x1 - self.x0) * (W - ML - MR)
    }
    fn py(&self, y: f64) -> f64 {
        H - MB - (y - self.y0) / (self.y1 - self.y0) * (H - MT - MB)
    }
}

/// The SVG head, title and axes; returns the frame for plotting.
fn open_chart(
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

fn empty_chart(out: &mut String, title: &str, why: &str) {
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

/// A histogram of `values` (milliseconds). Values beyond 3 × p99 are left out (and counted
/// in a note) so one outlier does not squash the rest.
pub fn histogram(out: &mut String, title: &str, x_label: &str, values: &[f64]) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        empty_chart(out, title, "no values");
        return;
    }
    v.sort_unstable_by(f64::total_cmp);
    let p99 = percentile(&v, 99.0);
    let cut = if v[v.len() - 1] > 3.0 * p99 && p99 > 0.0 {
        3.0 * p99
    } else {
        f64::INFINITY
    };
    let shown: Vec<f64> = v.iter().copied().filter(|x| *x <= cut).collect();
    let hidden = v.len() - shown.len();
    let (lo, hi) = (shown[0], shown[shown.len() - 1]);
    let (x0, x1, _) = nice_ticks(lo, hi, 6);
    let bins = 40usize;
    let width = (x1 - x0) / bins as f64;
    let mut counts = vec![0u64; bins];
    for x in &shown {
        let b = (((x - x0) / width).floor() as usize).min(bins - 1);
        counts[b] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(1) as f64;
    let f = open_chart(out, title, x_label, "requests", (x0, x1), (0.0, max));
    for (i, c) in counts.iter().enumerate() {
        if *c == 0 {
            continue;
        }
        let xa = f.px(x0 + i as f64 * width);
        let xb = f.px(x0 + (i + 1) as f64 * width);
        let y = f.py(*c as f64);
        let _ = write!(
            out,
            "<rect x=\"{xa:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#1f77b4\"><title>{}–{} ms: {c}</title></rect>",
            (xb - xa - 1.0).max(0.5),
            (H - MB - y).max(0.0),
            fmt_num(x0 + i as f64 * width),
            fmt_num(x0 + (i + 1) as f64 * width),
        );
    }
    let mut note = format!(
        "n={}  p50={} ms  p99={} ms",
        v.len(),
        fmt_num(percentile(&v, 50.0)),
        fmt_num(p99)
    );
    if hidden > 0 {
        let _ = write!(note, "  ({hidden} above {} ms not shown)", fmt_num(cut));
    }
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" {TL} text-anchor=\"end\">{}</text></svg>",
        W - MR,
        MT - 12.0,
        escape(&note)
    );
}

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

/// TTFT of each request (dots, at its send time) and the median per time bucket (line).
fn ttft_over_time(out: &mut String, title: &str, records: &[Record]) {
    let pts: Vec<(f64, f64)> = records
        .iter()
        .filter_map(|r| {
            r.ttft_us
                .map(|t| (r.sent_us as f64 / 1e6, t as f64 / 1000.0))
        })
        .collect();
    if pts.is_empty() {
        empty_chart(out, title, "no request produced a token");
        return;
    }
    let xhi = pts.iter().map(|p| p.0).fold(0.0, f64::max);
    let yhi = pts.iter().map(|p| p.1).fold(0.0, f64::max);
    let f = open_chart(
        out,
        title,
        "time since start (s)",
        "TTFT (ms)",
        (0.0, xhi),
        (0.0, yhi),
    );
    // At most ~3000 dots.
    let stride = pts.len().div_ceil(3000).max(1);
    for (x, y) in pts.iter().step_by(stride) {
        let _ = write!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"1.6\" fill=\"#1f77b4\" fill-opacity=\"0.45\"/>",
            f.px(*x),
            f.py(*y)
        );
    }
    let bucket = bucket_size(xhi);
    let n = (xhi / bucket).floor() as usize + 1;
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); n];
    for (x, y) in &pts {
        let b = ((x / bucket).floor() as usize).min(n - 1);
        per[b].push(*y);
    }
    let line: Vec<String> = per
        .iter_mut()
        .enumerate()
        .filter(|(_, v)| !v.is_empty())
        .map(|(i, v)| {
            v.sort_unstable_by(f64::total_cmp);
            let x = (i as f64 + 0.5) * bucket;
            format!("{:.1},{:.1}", f.px(x.min(f.x1)), f.py(percentile(v, 50.0)))
        })
        .collect();
    let _ = write!(
        out,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\
         <text x=\"{}\" y=\"{}\" {TL} text-anchor=\"end\">dots: requests; line: median per {} s</text></svg>",
        line.join(" "),
        COLORS[1],
        W - MR,
        MT - 12.0,
        fmt_num(bucket)
    );
}

/// A time bucket giving about 50 buckets over `span` seconds: 0.1, 0.2, 0.5, 1, 2, 5 … s.
fn bucket_size(span: f64) -> f64 {
    nice_step((span / 50.0).max(0.1))
}

/// `raw` rounded up to 1, 2 or 5 times a power of ten.
fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    mag * if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    }
}

/// Output tokens per second over the run, from each token event's arrival time (an event
/// counts `output_tokens / token_events` tokens, so usage-reported counts are respected).
fn tokens_over_time(out: &mut String, title: &str, records: &[Record]) {
    // The last token event of each request, then each event binned where it falls.
    let end = records
        .iter()
        .filter_map(|r| {
            let ttft = r.ttft_us?;
            let last = r
                .itl_us
                .iter()
                .fold(r.sent_us + ttft, |t, g| t + u64::from(*g));
            Some(last as f64 / 1e6)
        })
        .reduce(f64::max);
    let Some(end) = end else {
        empty_chart(out, title, "no token events");
        return;
    };
    let bucket = bucket_size(end);
    let n = (end / bucket).floor() as usize + 1;
    let mut sums = vec![0.0; n];
    for r in records {
        let Some(ttft) = r.ttft_us else { continue };
        let weight = if r.token_events > 0 {
            r.output_tokens as f64 / r.token_events as f64
        } else {
            1.0
        };
        let mut add =
            |t: u64| sums[((t as f64 / 1e6 / bucket).floor() as usize).min(n - 1)] += weight;
        let mut t = r.sent_us + ttft;
        add(t);
        for g in r.itl_us.iter() {
            t += u64::from(*g);
            add(t);
        }
    }
    let pts: Vec<(f64, f64)> = sums
        .iter()
        .enumerate()
        .map(|(i, s)| ((i as f64 + 0.5) * bucket, s / bucket))
        .collect();
    line_chart(
        out,
        title,
        "time since start (s)",
        "output tokens/s",
        &[Series {
            name: format!("per {} s", fmt_num(bucket)),
            points: pts,
            dashed: false,
        }],
    );
}

fn td(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |x| fmt_num((x * 100.0).round() / 100.0))
}

fn pair(s: Option<&Stats>) -> (String, String) {
    (td(s.map(|s| s.p50)), td(s.map(|s| s.p99)))
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1400px}\
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

fn stop_text(requests: Option<u64>, duration_s: Option<f64>) -> String {
    match (requests, duration_s) {
        (Some(n), Some(d)) => format!("{n} requests or {} s", fmt_num(d)),
        (Some(n), None) => format!("{n} requests"),
        (None, Some(d)) => format!("{} s", fmt_num(d)),
        (None, None) => "–".to_owned(),
    }
}

fn summary_tables(o: &mut String, doc: &Document) {
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

fn sweep_charts(o: &mut String, doc: &Document) {
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

fn step_charts(o: &mut String, doc: &Document, step: &Step) {
    let suffix = if doc.steps.len() > 1 {
        format!(" — {}", step.load.describe())
    } else {
        String::new()
    };
    let _ = write!(
        o,
        "<h2>{}</h2><div class=\"charts\">",
        escape(&if doc.steps.len() > 1 {
            format!("Step {}: {}", step.index + 1, step.load.describe())
        } else {
            format!("Run: {}", step.load.describe())
        })
    );
    let ok: Vec<&Record> = step.records.iter().filter(|r| r.ok()).collect();
    let ttft: Vec<f64> = ok
        .iter()
        .filter_map(|r| r.ttft_us.map(|t| t as f64 / 1000.0))
        .collect();
    let tpot: Vec<f64> = ok
        .iter()
        .filter_map(|r| r.tpot_us().map(|t| t / 1000.0))
        .collect();
    let e2e: Vec<f64> = ok.iter().map(|r| r.e2e_us as f64 / 1000.0).collect();
    histogram(o, &format!("TTFT distribution{suffix}"), "TTFT (ms)", &ttft);
    histogram(o, &format!("TPOT distribution{suffix}"), "TPOT (ms)", &tpot);
    histogram(
        o,
        &format!("E2E latency distribution{suffix}"),
        "E2E latency (ms)",
        &e2e,
    );
    ttft_over_time(o, &format!("TTFT over time{suffix}"), &step.records);
    tokens_over_time(
        o,
        &format!("Output tokens/s over time{suffix}"),
        &step.records,
    );
    o.push_str("</div>");
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
