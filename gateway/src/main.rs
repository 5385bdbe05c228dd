//! `infergate`: the command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use infergate_config::{Config, LoadError};
use infergate_runtime::{LogFormat, Signals};

#[derive(Parser)]
#[command(
    name = "infergate",
    version,
    about = "An inference gateway for OpenAI-compatible model servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve traffic as the config says.
    Run {
        /// The config file (YAML).
        #[arg(long, short)]
        config: PathBuf,
        /// Log line format.
        #[arg(long, value_enum, default_value_t = LogFormat::Json)]
        log_format: LogFormat,
    },
    /// Check a config file: exit 0 when valid, 1 when invalid, 2 when it cannot be read.
    CheckConfig {
        /// The config file (YAML).
        file: PathBuf,
    },
    /// Print the JSON Schema of the config file, for editors.
    ConfigSchema,
    /// Show which rule, variant and endpoints a request would get, using the data path's own
    /// routing code (endpoint state is the initial one: no traffic, nothing ejected).
    Explain {
        /// The config file (YAML).
        #[arg(long, short)]
        config: PathBuf,
        /// The request's model; default: the `model` of `--body`.
        #[arg(long, short)]
        model: Option<String>,
        /// A request header, `name: value`; repeat for several.
        #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// A request body (JSON) to take the model from.
        #[arg(long)]
        body: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => check_config(&file),
        Command::ConfigSchema => {
            match serde_json::to_string_pretty(&infergate_config::json_schema()) {
                Ok(s) => {
                    println!("{s}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run { config, log_format } => run(&config, log_format),
        Command::Explain {
            config,
            model,
            headers,
            body,
            json,
        } => explain(&config, model, &headers, body.as_deref(), json),
    }
}

fn explain(
    path: &std::path::Path,
    model: Option<String>,
    headers: &[String],
    body: Option<&std::path::Path>,
    json: bool,
) -> ExitCode {
    let fail = |msg: String| {
        eprintln!("error: {msg}");
        ExitCode::from(2)
    };
    let cfg = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return fail(e.to_string()),
    };
    let mut map = http::HeaderMap::new();
    for h in headers {
        let Some((name, value)) = h.split_once(':') else {
            return fail(format!("header {h:?} is not NAME: VALUE"));
        };
        let name = match http::HeaderName::from_bytes(name.trim().as_bytes()) {
            Ok(n) => n,
            Err(_) => return fail(format!("{:?} is not a header name", name.trim())),
        };
        let value = match http::HeaderValue::from_str(value.trim()) {
            Ok(v) => v,
            Err(_) => return fail(format!("the value of {name} is not a valid header value")),
        };
        map.append(name, value);
    }
    let model = match (model, body) {
        (Some(m), _) => m,
        (None, Some(b)) => {
            let bytes = match std::fs::read(b) {
                Ok(x) => x,
                Err(e) => return fail(format!("cannot read {}: {e}", b.display())),
            };
            match infergate_gateway::model_field::extract_model(&bytes) {
                Ok(m) => m.into_owned(),
                Err(e) => return fail(format!("{}: no model in the body ({e:?})", b.display())),
            }
        }
        (None, None) => return fail("give --model or --body".into()),
    };
    let rt = match infergate_runtime::runtime::current_thread() {
        Ok(rt) => rt,
        Err(e) => return fail(e.to_string()),
    };
    rt.block_on(async {
        let metrics = match infergate_gateway::metrics::Metrics::new() {
            Ok(m) => std::sync::Arc::new(m),
            Err(e) => return fail(e.to_string()),
        };
        let table = match infergate_gateway::compile::Compiler::new(metrics)
            .compile(&std::sync::Arc::new(cfg))
        {
            Ok(t) => t,
            Err(e) => return fail(e.to_string()),
        };
        match infergate_gateway::explain::explain(&table, &model, &map) {
            Ok(v) => {
                if json {
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                } else {
                    print!("{}", infergate_gateway::explain::render(&v));
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        }
    })
}

fn check_config(file: &std::path::Path) -> ExitCode {
    match Config::load(file) {
        Ok(cfg) => {
            println!(
                "{}: ok ({} models, {} backends, {} endpoints)",
                file.display(),
                cfg.models.len(),
                cfg.backends.len(),
                cfg.backends
                    .iter()
                    .map(|b| b.endpoints.len())
                    .sum::<usize>()
            );
            ExitCode::SUCCESS
        }
        Err(LoadError::Read { path, source }) => {
            eprintln!("error: cannot read {path}: {source}");
            ExitCode::from(2)
        }
        Err(LoadError::Invalid { path, errors }) => {
            eprintln!("{path}: {} error(s)", errors.0.len());
            for e in &errors.0 {
                eprintln!("  {e}");
            }
            ExitCode::from(1)
        }
    }
}

fn run(path: &std::path::Path, log_format: LogFormat) -> ExitCode {
    infergate_runtime::logs::init(log_format);
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot read config");
            return ExitCode::from(2);
        }
    };
    let rt = match infergate_runtime::runtime::proxy() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        // Signal handlers go in before the listeners are announced.
        let mut signals = match Signals::install() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot watch signals");
                return ExitCode::FAILURE;
            }
        };
        let source = infergate_gateway::Source {
            path: Some(path),
            text: &text,
            poll: Duration::from_secs(1),
        };
        let started = infergate_gateway::start(source).await;
        drop(text);
        let running = match started {
            Ok(r) => r,
            Err(infergate_gateway::StartError::Config(errors)) => {
                let errors: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
                tracing::error!(path = %path.display(), ?errors, "invalid config");
                return ExitCode::from(1);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                return ExitCode::FAILURE;
            }
        };
        let signal = signals.next().await;
        tracing::info!(signal = signal.name(), "shutting down");
        // The drain deadline in force now (the config may have been reloaded since start).
        let deadline = running.gateway.status().config.shutdown.drain_timeout.get();
        match signals.or_signal(running.drain(deadline)).await {
            Ok(true) => tracing::info!("drained; exiting"),
            Ok(false) => {
                tracing::warn!(
                    in_flight = running.gateway.in_flight(),
                    "drain deadline passed; exiting"
                )
            }
            Err(signal) => {
                tracing::info!(signal = signal.name(), "shutting down");
                tracing::warn!(
                    in_flight = running.gateway.in_flight(),
                    "second signal; exiting now"
                );
            }
        }
        ExitCode::SUCCESS
    })
}
