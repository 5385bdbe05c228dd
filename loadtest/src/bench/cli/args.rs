//! The command line's arguments.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};

use crate::bench::spec::{parse_positive_duration, parse_rate, Dist, Header, Slo};
use crate::bench::workload::{Api, Arrival};

/// Load tester for OpenAI-compatible LLM servers: streamed requests at a rate (open loop)
/// or a concurrency (closed loop), with TTFT, TPOT, ITL, E2E, throughput, goodput and send
/// lag per run or sweep step; JSON, CSV and a self-contained HTML report.
#[derive(Parser, Debug)]
#[command(name = "infergate-bench", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run a benchmark (one load, or a sweep with --rates / --concurrencies).
    Run(Box<RunArgs>),
    /// Print the key metrics of several result files side by side, with ratios to the first.
    Compare {
        /// Result files written by `run --out` (at least two).
        #[arg(required = true, num_args = 2.., value_name = "RESULT.json")]
        files: Vec<PathBuf>,
    },
    /// Render the HTML report of a result file.
    Report {
        /// A result file written by `run --out`.
        #[arg(value_name = "RESULT.json")]
        file: PathBuf,
        /// Where to write the HTML.
        #[arg(long, short)]
        out: PathBuf,
    },
}

/// `infergate-bench run`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("load").multiple(false).args(["rate", "rates", "concurrency", "concurrencies"])))]
pub struct RunArgs {
    /// Server URL: http://HOST:PORT (the API path is added), .../v1 (idem), or a full
    /// endpoint URL used as is.
    #[arg(long)]
    pub url: String,
    /// The `model` of the requests.
    #[arg(long)]
    pub model: String,
    /// chat: /v1/chat/completions with messages; completions: /v1/completions with prompt.
    #[arg(long, value_enum, default_value_t = Api::Chat)]
    pub api: Api,
    /// Open loop: requests per second (arrivals per --arrival).
    #[arg(long, value_parser = parse_rate, value_name = "R")]
    pub rate: Option<f64>,
    /// Sweep of open-loop rates, one step each: 1,2,4,8.
    #[arg(long, value_parser = parse_rate, value_delimiter = ',', value_name = "R,R,...")]
    pub rates: Vec<f64>,
    /// Closed loop: requests in flight (default 1 when no load is given).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000), value_name = "C")]
    pub concurrency: Option<u32>,
    /// Sweep of concurrencies, one step each: 1,4,16,64.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=1_000_000), value_name = "C,C,...")]
    pub concurrencies: Vec<u32>,
    /// Open loop: at most C requests in flight; later arrivals wait for a slot and the wait
    /// counts as send lag (like vLLM's --max-concurrency with --request-rate).
    #[arg(long, value_name = "C", conflicts_with_all = ["concurrency", "concurrencies"],
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_concurrency: Option<u32>,
    /// Spacing of open-loop arrivals: poisson (exponential gaps) or constant (1/R apart).
    #[arg(long, value_enum, default_value_t = Arrival::Poisson)]
    pub arrival: Arrival,
    /// Stop starting requests after N (per step). Default 100 when --duration is not given.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,
    /// Stop starting requests after this long (per step): 30s, 500ms, 2m; bare number = s.
    #[arg(long, value_parser = parse_positive_duration, value_name = "D")]
    pub duration: Option<Duration>,
    /// Requests sent (at the same load) before each step and not counted.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub warmup: u64,
    /// Open up to N keep-alive connections before each step (N concurrent GET .../v1/models,
    /// not counted), so that a high-rate run does not start with a burst of connects.
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub connections: u32,
    /// Synthetic prompt length in words (whitespace-separated; one token each for
    /// infergate-sim): MEAN[:STDDEV].
    #[arg(
        long,
        value_name = "MEAN[:STDDEV]",
        default_value = "128",
        conflicts_with = "dataset"
    )]
    pub input_tokens: Dist,
    /// Output length sent as max_tokens (with ignore_eos: true): MEAN[:STDDEV]. Default 128
    /// for synthetic prompts; with --dataset, for lines without max_tokens (none: server
    /// default).
    #[arg(long, value_name = "MEAN[:STDDEV]")]
    pub output_tokens: Option<Dist>,
    /// JSONL prompts: one object per line with `prompt` or `messages`, optional `max_tokens`.
    #[arg(long, value_name = "FILE.jsonl")]
    pub dataset: Option<PathBuf>,
    /// Do not send ignore_eos (for servers that reject it).
    #[arg(long)]
    pub no_ignore_eos: bool,
    /// Extra request header, 'name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<Header>,
    /// Sent as `Authorization: Bearer KEY` (never written to the results).
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Per-request limit, from send to the end of the response.
    #[arg(long, value_parser = parse_positive_duration, default_value = "300s", value_name = "D")]
    pub timeout: Duration,
    /// Seed of prompts, lengths and arrivals: the same seed repeats them. Default: random
    /// (written to the results).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Goodput SLOs: ttft=500ms,tpot=50ms[,e2e=10s] (bare numbers are ms).
    #[arg(long, value_name = "SPEC")]
    pub slo: Option<Slo>,
    /// Worker threads of the client runtime (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Write the JSON results (schema docs/bench.schema.json).
    #[arg(long, value_name = "FILE.json")]
    pub out: Option<PathBuf>,
    /// Write every request record as CSV.
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
    /// Write a self-contained HTML report.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// A name for this run (in the results, the report and compare).
    #[arg(long, value_name = "TEXT")]
    pub label: Option<String>,
    /// No progress display on stderr.
    #[arg(long)]
    pub no_progress: bool,
}
