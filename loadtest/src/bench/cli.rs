//! The `infergate-bench` command line: `run`, `compare` and `report`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{ArgGroup, Args, Parser, Subcommand};
use http::Uri;
use tokio::sync::watch;

use super::client::{http_client, Ctx, Live, Target};
use super::compare::compare;
use super::output::{render_summary, rfc3339, write_csv, Config, Document, Step, SCHEMA_VERSION};
use super::report;
use super::runner::{run_steps, Load, Plan, Stop};
use super::spec::{is_secret_header, parse_positive_duration, parse_rate, Dist, Header, Slo};
use super::workload::{Api, Arrival, Dataset, Workload};

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

/// The entry point of the binary.
pub fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run(args) => run(*args, &argv),
        Cmd::Compare { files } => compare(&files).map(|text| {
            print!("{text}");
            ExitCode::SUCCESS
        }),
        Cmd::Report { file, out } => Document::read_json(&file).and_then(|doc| {
            report::write(&doc, &out)?;
            eprintln!("report written to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("infergate-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The request URL for `url` and `api`: a bare host gets the API path, a `.../v1` base gets
/// the rest of it, any other path is used as is. Only `http` is supported.
pub fn endpoint(url: &str, api: Api) -> Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("--url `{url}` is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "--url `{url}`: https is not supported; benchmark a plain-HTTP listener"
            ))
        }
        _ => return Err(format!("--url `{url}` must start with http://")),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("--url `{url}` has no host"))?
        .clone();
    let path = uri.path().trim_end_matches('/');
    let api_path = api.path();
    let new_path = if path.is_empty() {
        api_path.to_owned()
    } else if path.ends_with("/v1") {
        format!("{path}{}", api_path.trim_start_matches("/v1"))
    } else {
        uri.path().to_owned()
    };
    let pq = match uri.query() {
        Some(q) => format!("{new_path}?{q}"),
        None => new_path,
    };
    Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(pq)
        .build()
        .map_err(|e| format!("--url `{url}`: {e}"))
}

/// The command line with secrets replaced by `***`.
pub fn redact(argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut next_secret = false;
    let mut next_header = false;
    for a in argv {
        if next_secret {
            out.push("***".to_owned());
            next_secret = false;
            continue;
        }
        if next_header {
            out.push(redact_header(a));
            next_header = false;
            continue;
        }
        if a == "--api-key" {
            next_secret = true;
            out.push(a.clone());
        } else if a.starts_with("--api-key=") {
            out.push("--api-key=***".to_owned());
        } else if a == "-H" || a == "--header" {
            next_header = true;
            out.push(a.clone());
        } else if let Some(h) = a.strip_prefix("--header=") {
            out.push(format!("--header={}", redact_header(h)));
        } else if let Some(h) = a.strip_prefix("-H").filter(|h| !h.is_empty()) {
            out.push(format!("-H{}", redact_header(h)));
        } else {
            out.push(a.clone());
        }
    }
    out
}

fn redact_header(h: &str) -> String {
    match h.split_once(':') {
        Some((name, _)) if is_secret_header(name.trim()) => format!("{}: ***", name.trim()),
        _ => h.to_owned(),
    }
}

fn run(a: RunArgs, argv: &[String]) -> Result<ExitCode, String> {
    let uri = endpoint(&a.url, a.api)?;
    let target = Target::new(uri.clone(), a.api_key.as_deref(), &a.headers)?;
    let dataset = a.dataset.as_deref().map(Dataset::load).transpose()?;
    // A random seed stays below 2^53 so that JSON readers in any language keep it exact.
    let seed = a.seed.unwrap_or_else(|| rand::random::<u64>() >> 11);
    let ignore_eos = !a.no_ignore_eos;
    let input = a.input_tokens;
    let has_dataset = dataset.is_some();
    let workload = Workload::new(
        a.api,
        a.model.clone(),
        input,
        a.output_tokens,
        dataset,
        ignore_eos,
        seed,
    );
    let (loads, sweep): (Vec<Load>, Option<&str>) = if let Some(rate) = a.rate {
        (
            vec![Load::Rate {
                rate,
                arrival: a.arrival,
            }],
            None,
        )
    } else if !a.rates.is_empty() {
        (
            a.rates
                .iter()
                .map(|&rate| Load::Rate {
                    rate,
                    arrival: a.arrival,
                })
                .collect(),
            Some("rate"),
        )
    } else if !a.concurrencies.is_empty() {
        (
            a.concurrencies
                .iter()
                .map(|&c| Load::Concurrency { concurrency: c })
                .collect(),
            Some("concurrency"),
        )
    } else {
        (
            vec![Load::Concurrency {
                concurrency: a.concurrency.unwrap_or(1),
            }],
            None,
        )
    };
    let stop = Stop {
        requests: match (a.requests, a.duration) {
            (None, None) => Some(100),
            (r, _) => r,
        },
        duration: a.duration,
    };
    let threads = a.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        |t| t as usize,
    );
    let config = Config {
        url: a.url.clone(),
        endpoint: uri.to_string(),
        api: a.api,
        model: a.model.clone(),
        sweep: sweep.map(str::to_owned),
        loads: loads.clone(),
        requests: stop.requests,
        duration_s: stop.duration.map(|d| d.as_secs_f64()),
        warmup: a.warmup,
        connections: a.connections,
        max_concurrency: a.max_concurrency,
        input_tokens: (!has_dataset).then_some(input),
        output_tokens: workload.output,
        dataset: a.dataset.as_ref().map(|p| p.display().to_string()),
        ignore_eos,
        headers: a
            .headers
            .iter()
            .map(|h| {
                redact_header(&format!(
                    "{}: {}",
                    h.name,
                    String::from_utf8_lossy(h.value.as_bytes())
                ))
            })
            .collect(),
        api_key: a.api_key.is_some(),
        timeout_s: a.timeout.as_secs_f64(),
        seed,
        threads,
        slo: a.slo.map(Into::into),
    };
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let plan = Plan {
        workload: Arc::new(workload),
        stop,
        warmup: a.warmup,
        connections: a.connections,
        max_concurrency: a.max_concurrency,
        slo: a.slo,
        progress: !a.no_progress,
        tty: std::io::stderr().is_terminal(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let steps_total = loads.len();
    let (results, interrupted) = runtime.block_on(async {
        let ctx = Arc::new(Ctx {
            client: http_client(),
            target,
            timeout: a.timeout,
            live: Arc::new(Live::default()),
        });
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let cancel_tx = Arc::new(cancel_tx);
        let watcher = {
            let cancel_tx = cancel_tx.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!(
                        "\ninfergate-bench: interrupted; waiting for the requests in flight \
                         (Ctrl-C again to quit at once)"
                    );
                    let _ = cancel_tx.send(true);
                    if tokio::signal::ctrl_c().await.is_ok() {
                        std::process::exit(130);
                    }
                }
            })
        };
        let results = run_steps(ctx, &plan, &loads, cancel_rx.clone(), |i, step| {
            let title = if steps_total > 1 {
                format!("step {}/{steps_total}: {}", i + 1, step.load.describe())
            } else {
                step.load.describe()
            };
            println!("{}", render_summary(&title, &step.summary));
        })
        .await;
        watcher.abort();
        let interrupted = *cancel_rx.borrow();
        (results, interrupted)
    });
    runtime.shutdown_timeout(Duration::from_millis(100));
    let doc = Document {
        schema_version: SCHEMA_VERSION,
        tool: "infergate-bench".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        command_line: redact(argv),
        started_at: rfc3339(started),
        label: a.label.clone(),
        config,
        steps: results
            .into_iter()
            .enumerate()
            .map(|(i, s)| Step {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                load: s.load,
                summary: s.summary,
                records: s.records,
            })
            .collect(),
    };
    if let Some(p) = &a.out {
        doc.write_json(p)?;
        eprintln!("results written to {}", p.display());
    }
    if let Some(p) = &a.csv {
        write_csv(&doc, p)?;
        eprintln!("records written to {}", p.display());
    }
    if let Some(p) = &a.report {
        report::write(&doc, p)?;
        eprintln!("report written to {}", p.display());
    }
    Ok(if interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = |u: &str, api| endpoint(u, api).map(|x| x.to_string());
        assert_eq!(
            e("http://127.0.0.1:9100", Api::Chat).unwrap(),
            "http://127.0.0.1:9100/v1/chat/completions"
        );
        assert_eq!(
            e("http://h:1/", Api::Completions).unwrap(),
            "http://h:1/v1/completions"
        );
        assert_eq!(
            e("http://h:1/openai/v1/", Api::Chat).unwrap(),
            "http://h:1/openai/v1/chat/completions"
        );
        assert_eq!(
            e("http://h:1/custom/path?x=1", Api::Chat).unwrap(),
            "http://h:1/custom/path?x=1"
        );
        assert!(e("https://h", Api::Chat).is_err());
        assert!(e("h:1", Api::Chat).is_err());
        assert!(e("not a url", Api::Chat).is_err());
    }

    #[test]
    fn secrets_are_redacted() {
        let argv: Vec<String> = [
            "infergate-bench",
            "run",
            "--api-key",
            "sk-1",
            "--api-key=sk-2",
            "-H",
            "Authorization: Bearer x",
            "-H",
            "x-sim-fault: none",
            "--header=x-api-key: y",
            "-Hcookie: z",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = redact(&argv).join(" ");
        assert!(!r.contains("sk-1") && !r.contains("sk-2"), "{r}");
        assert!(
            !r.contains("Bearer x") && !r.contains(": y") && !r.contains(": z"),
            "{r}"
        );
        assert!(r.contains("x-sim-fault: none"));
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let c = Cli::try_parse_from([
            "infergate-bench",
            "run",
            "--url",
            "http://h:1",
            "--model",
            "m",
            "--rates",
            "1,2.5",
            "--slo",
            "ttft=500ms",
        ])
        .unwrap();
        let Cmd::Run(a) = c.cmd else { panic!() };
        assert_eq!(a.rates, vec![1.0, 2.5]);
        assert!(Cli::try_parse_from([
            "infergate-bench",
            "run",
            "--url",
            "http://h:1",
            "--model",
            "m",
            "--rate",
            "1",
            "--concurrency",
            "2"
        ])
        .is_err());
    }
}
