//! `infergate-control`: the command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use infergate_control::config::{ControlConfig, Mode};
use infergate_control::feed::Feed;
use infergate_control::{run, server};
use infergate_gpu::nvml::NvmlProbe;
use infergate_gpu::policy::Policy;
use infergate_gpu::probe::GpuProbe;

#[derive(Parser)]
#[command(
    name = "infergate-control",
    version,
    about = "GPU health, remediation and cache warmup for infergate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Watch the GPUs, serve the health feed and remediate.
    Run {
        #[arg(long, short)]
        config: PathBuf,
        /// Log every remediation action instead of taking it.
        #[arg(long)]
        dry_run: bool,
        /// Path of the NVML library (overrides `gpu.library`).
        #[arg(long)]
        nvml_library: Option<PathBuf>,
    },
    /// Read every GPU once and print what was read and the verdict. Exit 0 healthy,
    /// 1 unhealthy, 2 cannot read.
    GpuCheck {
        #[arg(long)]
        json: bool,
        /// Path of the NVML library (default: the system's).
        #[arg(long)]
        nvml_library: Option<PathBuf>,
        /// A control config whose policy to apply (default: the built-in policy).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::GpuCheck {
            json,
            nvml_library,
            config,
        } => gpu_check(json, nvml_library, config),
        Command::Run {
            config,
            dry_run,
            nvml_library,
        } => run_control(&config, dry_run, nvml_library),
    }
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("INFERGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .json()
        .flatten_event(true)
        .init();
}

fn gpu_check(json: bool, library: Option<PathBuf>, config: Option<PathBuf>) -> ExitCode {
    let cfg = match config.as_deref().map(ControlConfig::load).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let library = library.or(cfg.gpu.library.clone());
    let node = cfg.node_name();
    let outcome = match NvmlProbe::load(library.as_deref(), &node, cfg.gpu.call_timeout.get()) {
        Ok(probe) => infergate_gpu::check::check(&probe, &cfg.policy),
        Err(e) => infergate_gpu::check::check_reading(Err(e), &cfg.policy),
    };
    if json {
        println!("{}", outcome.json);
    } else {
        print!("{}", outcome.text);
    }
    ExitCode::from(u8::try_from(outcome.exit_code).unwrap_or(2))
}

fn run_control(path: &std::path::Path, dry_run: bool, library: Option<PathBuf>) -> ExitCode {
    init_logs();
    let mut cfg = match ControlConfig::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid config");
            return ExitCode::from(1);
        }
    };
    if dry_run {
        cfg.remediation.config.dry_run = true;
    }
    if library.is_some() {
        cfg.gpu.library = library;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let node = cfg.node_name();
        let probe: Arc<dyn GpuProbe> = match NvmlProbe::load(
            cfg.gpu.library.as_deref(),
            &node,
            cfg.gpu.call_timeout.get(),
        ) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                tracing::error!(error = %e, "cannot read GPUs");
                return ExitCode::from(2);
            }
        };
        let registry = Arc::new(prometheus::Registry::new());
        let metrics = match run::LoopMetrics::new(&registry) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "cannot register metrics");
                return ExitCode::FAILURE;
            }
        };
        let remediator = match cfg.remediation.mode {
            Mode::Off => None,
            Mode::Local => Some(infergate_remediate::Remediator::local(
                cfg.remediation.config.clone(),
                node.clone(),
            )),
            Mode::Kubernetes => {
                match infergate_remediate::KubeActions::infer(
                    node.clone(),
                    cfg.remediation.config.clone(),
                )
                .await
                {
                    Ok(k) => Some(infergate_remediate::Remediator::kubernetes(
                        cfg.remediation.config.clone(),
                        k,
                    )),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot reach the Kubernetes API");
                        return ExitCode::FAILURE;
                    }
                }
            }
        };
        let feed = Feed::new(&node);
        let (listener, addr) = match server::bind(&cfg.listen_addr()).await {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(addr = %cfg.listen_addr(), error = %e, "cannot bind");
                return ExitCode::FAILURE;
            }
        };
        let api = Arc::new(server::Api {
            feed: feed.clone(),
            metrics: registry,
        });
        let _server = server::spawn(listener, api);
        tracing::info!(listener = "control", addr = %addr, node = %node, "listening");
        let policy = Policy::new(cfg.policy.clone());
        let interval = cfg.gpu.interval.get().max(Duration::from_millis(50));
        let control = tokio::spawn(run::run(probe, policy, feed, remediator, interval, metrics));
        wait_for_signal().await;
        control.abort();
        tracing::info!("shutting down");
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
