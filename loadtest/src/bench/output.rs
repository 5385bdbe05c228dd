//! The JSON document of a run (schema version 1, `docs/bench.schema.json`), the CSV of its
//! records and the text summary printed after each step.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::record::{Kind, Record};
use super::runner::Load;
use super::spec::{fmt_num, Dist};
use super::stats::{SloMs, Stats, Summary};
use super::workload::Api;

/// The version of the JSON document's layout.
pub const SCHEMA_VERSION: u32 = 1;

/// One run: a single load, or a sweep of several (one step each).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Document {
    /// Always [`SCHEMA_VERSION`] for this layout.
    pub schema_version: u32,
    /// `infergate-bench`.
    pub tool: String,
    pub version: String,
    /// The command line, secrets (`--api-key`, secret headers) replaced by `***`.
    pub command_line: Vec<String>,
    /// Start of the run, RFC 3339 UTC.
    pub started_at: String,
    /// `--label`, a name for `compare` and the report.
    pub label: Option<String>,
    pub config: Config,
    /// One per load: a single run has one step.
    pub steps: Vec<Step>,
}

/// The configuration of the run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    /// `--url` as given.
    pub url: String,
    /// The URL the requests go to.
    pub endpoint: String,
    pub api: Api,
    pub model: String,
    /// `rate` or `concurrency` for a sweep; null for a single run.
    pub sweep: Option<String>,
    /// The load of each step.
    pub loads: Vec<Load>,
    /// `--requests` (per step).
    pub requests: Option<u64>,
    /// `--duration` (per step), in seconds.
    pub duration_s: Option<f64>,
    /// `--warmup` requests (per step).
    pub warmup: u64,
    /// `--connections`: keep-alive connections opened before each step.
    #[serde(default)]
    pub connections: u32,
    /// `--max-concurrency`: the cap on requests in flight of an open-loop load.
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    /// Synthetic prompt length in words (null with a dataset).
    pub input_tokens: Option<Dist>,
    /// Output length (`max_tokens`) distribution; null: from the dataset or the server.
    pub output_tokens: Option<Dist>,
    pub dataset: Option<String>,
    pub ignore_eos: bool,
    /// Extra headers, `name: value`, secret values replaced by `***`.
    pub headers: Vec<String>,
    /// Whether `--api-key` was given (the key is never written).
    pub api_key: bool,
    pub timeout_s: f64,
    /// The seed actually used (random when `--seed` was not given): pass it to `--seed` to
    /// repeat the run's prompts, lengths and arrival schedule.
    pub seed: u64,
    pub threads: usize,
    pub slo: Option<SloMs>,
}

/// One sweep step (or the whole of a single run).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    pub index: u32,
    pub load: Load,
    pub summary: Summary,
    pub records: Vec<Record>,
}

impl Document {
    pub fn write_json(&self, path: &Path) -> Result<(), String> {
        let f = std::fs::File::create(path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        serde_json::to_writer(&mut w, self)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        w.write_all(b"\n")
            .and_then(|()| w.flush())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    pub fn read_json(path: &Path) -> Result<Self, String> {
        let f = std::fs::File::open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let doc: Document = serde_json::from_reader(std::io::BufReader::new(f))
            .map_err(|e| format!("{} is not an infergate-bench result: {e}", path.display()))?;
        if doc.schema_version != SCHEMA_VERSION {
            return Err(format!(
                "{}: schema_version {} is not supported (expected {SCHEMA_VERSION})",
                path.display(),
                doc.schema_version
            ));
        }
        Ok(doc)
    }

    /// `--label`, else the file name.
    pub fn name(&self, path: &Path) -> String {
        self.label.clone().unwrap_or_else(|| {
            path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into(),
            )
        })
    }
}

/// Writes every record of every step as CSV (one header line, then one line per request).
pub fn write_csv(doc: &Document, path: &Path) -> Result<(), String> {
    let f = std::fs::File::create(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut line = String::new();
    line.push_str(
        "step,load,id,scheduled_ms,sent_ms,send_lag_ms,ttft_ms,tpot_ms,e2e_ms,input_tokens,\
         output_tokens,token_events,usage_reported,max_tokens,status,kind,error,itl_ms\n",
    );
    let opt = |v: Option<f64>| v.map(fmt_num).unwrap_or_default();
    let opt_u = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_default();
    for step in &doc.steps {
        let load = csv_field(&step.load.describe());
        for r in &step.records {
            let itl: Vec<String> = r
                .itl_us
                .iter()
                .map(|&g| fmt_num(f64::from(g) / 1000.0))
                .collect();
            let _ = writeln!(
                line,
                "{},{load},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                step.index,
                r.id,
                fmt_num(r.scheduled_us as f64 / 1000.0),
                fmt_num(r.sent_us as f64 / 1000.0),
                fmt_num(r.send_lag_us() as f64 / 1000.0),
                opt(r.ttft_us.map(|t| t as f64 / 1000.0)),
                opt(r.tpot_us().map(|t| t / 1000.0)),
                fmt_num(r.e2e_us as f64 / 1000.0),
                opt_u(r.input_tokens),
                r.output_tokens,
                r.token_events,
                r.usage_reported,
                opt_u(r.max_tokens.map(u64::from)),
                opt_u(r.status.map(u64::from)),
                r.kind.as_str(),
                csv_field(r.error.as_deref().unwrap_or("")),
                itl.join(" "),
            );
            if line.len() > 1 << 16 {
                w.write_all(line.as_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                line.clear();
            }
        }
    }
    w.write_all(line.as_bytes())
        .and_then(|()| w.flush())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A CSV field, quoted when needed.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn stats_row(out: &mut String, name: &str, s: Option<&Stats>) {
    match s {
        Some(s) => {
            let _ = writeln!(
                out,
                "  {name:<10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                ms(s.mean),
                ms(s.p50),
                ms(s.p90),
                ms(s.p95),
                ms(s.p99),
                ms(s.max)
            );
        }
        None => {
            let _ = writeln!(out, "  {name:<10} {:>10}", "-");
        }
    }
}

/// The text summary of one step, printed to stdout.
pub fn render_summary(title: &str, s: &Summary) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "== {title} ==");
    let _ = writeln!(
        o,
        "  duration {:.2} s; requests {} ok, {} failed (of {})",
        s.duration_s, s.requests.ok, s.requests.failed, s.requests.total
    );
    if s.requests.failed > 0 {
        let parts: Vec<String> = Kind::ERRORS
            .iter()
            .filter(|k| s.errors.get(**k) > 0)
            .map(|k| format!("{} {}", k.as_str(), s.errors.get(*k)))
            .collect();
        let _ = writeln!(o, "  errors: {}", parts.join(", "));
    }
    let _ = writeln!(
        o,
        "  throughput: {:.2} req/s, input {:.1} tok/s, output {:.1} tok/s",
        s.throughput.requests_per_s,
        s.throughput.input_tokens_per_s,
        s.throughput.output_tokens_per_s
    );
    let _ = writeln!(
        o,
        "  send lag: mean {} ms, p99 {} ms, max {} ms; concurrency mean {:.1}, max {}",
        ms(s.send_lag_ms.mean),
        ms(s.send_lag_ms.p99),
        ms(s.send_lag_ms.max),
        s.concurrency.mean,
        s.concurrency.max
    );
    let _ = writeln!(
        o,
        "  {:<10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "(ms)", "mean", "p50", "p90", "p95", "p99", "max"
    );
    stats_row(&mut o, "TTFT", s.ttft_ms.as_ref());
    stats_row(&mut o, "TPOT", s.tpot_ms.as_ref());
    stats_row(&mut o, "ITL", s.itl_ms.as_ref());
    stats_row(&mut o, "E2E", s.e2e_ms.as_ref());
    if let Some(g) = &s.goodput {
        let _ = writeln!(
            o,
            "  goodput: {:.2} req/s; {:.1} % of requests meet {}",
            g.requests_per_s,
            g.attainment_pct,
            slo_text(&g.slo)
        );
    }
    o
}

/// `ttft ≤ 500 ms, tpot ≤ 50 ms`.
pub fn slo_text(s: &SloMs) -> String {
    let mut parts = Vec::new();
    for (n, v) in [("TTFT", s.ttft_ms), ("TPOT", s.tpot_ms), ("E2E", s.e2e_ms)] {
        if let Some(v) = v {
            parts.push(format!("{n} ≤ {} ms", fmt_num(v)));
        }
    }
    parts.join(", ")
}

/// HTML/XML escaping.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_html_escaping() {
        assert_eq!(csv_field("a"), "a");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(
            escape("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
    }
}
