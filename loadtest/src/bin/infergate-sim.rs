//! `infergate-sim`: an OpenAI-compatible model-server simulator (see `infergate_loadtest::sim`).
//!
//! After binding it prints exactly one line to stdout, `infergate-sim listening on
//! http://ADDR` with the bound address (so `--listen 127.0.0.1:0` works), and serves until
//! SIGTERM or SIGINT, then exits 0. It exits 1 when it cannot bind. Logs go to stderr
//! (`RUST_LOG`, default `warn`).

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use infergate_loadtest::sim::{SimConfig, Simulator};

/// OpenAI-compatible model-server simulator with vLLM's wire behaviour.
#[derive(Parser, Debug)]
#[command(name = "infergate-sim", version, about)]
struct Args {
    /// Address to listen on (HTTP/1.1 and h2c); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:9101")]
    listen: SocketAddr,
    /// Model name to serve; repeat for several.
    #[arg(long = "model", value_name = "NAME", default_value = "demo")]
    models: Vec<String>,
    /// Time to first token, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 50)]
    ttft_ms: u64,
    /// Inter-token latency, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 10)]
    itl_ms: u64,
    /// Output tokens for requests that set neither max_tokens nor max_completion_tokens.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_tokens: u32,
    /// Send `x-served-version: V` on every response.
    #[arg(long, value_name = "V")]
    served_version: Option<String>,
    /// Length of each embedding vector.
    #[arg(long, value_name = "N", default_value_t = 8)]
    embedding_dims: usize,
    /// Response ids from `x-request-id` and a fixed `created`: equal requests get
    /// byte-identical responses.
    #[arg(long)]
    deterministic: bool,
}

impl Args {
    fn sim_config(&self) -> SimConfig {
        SimConfig {
            models: self.models.clone(),
            ttft: Duration::from_millis(self.ttft_ms),
            itl: Duration::from_millis(self.itl_ms),
            default_max_tokens: self.max_tokens,
            served_version: self.served_version.clone(),
            embedding_dims: self.embedding_dims,
            deterministic: self.deterministic,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Fails only if a subscriber is already installed, which is harmless.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("infergate-sim: cannot start the tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let sim = match Simulator::start(args.listen, args.sim_config()).await {
        Ok(sim) => sim,
        Err(err) => {
            eprintln!("infergate-sim: cannot listen on {}: {err}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    let announced = writeln!(stdout, "infergate-sim listening on http://{}", sim.addr())
        .and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(err) = announced {
        eprintln!("infergate-sim: cannot write to stdout: {err}");
        return ExitCode::FAILURE;
    }
    let code = match shutdown_signal().await {
        Ok(signal) => {
            tracing::info!(signal, "shutting down");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("infergate-sim: cannot listen for signals: {err}");
            ExitCode::FAILURE
        }
    };
    sim.shutdown();
    code
}

/// Resolves with the signal's name on SIGTERM or SIGINT.
#[cfg(unix)]
async fn shutdown_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => Ok("SIGTERM"),
        _ = int.recv() => Ok("SIGINT"),
    }
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
async fn shutdown_signal() -> std::io::Result<&'static str> {
    tokio::signal::ctrl_c().await.map(|()| "ctrl-c")
}
