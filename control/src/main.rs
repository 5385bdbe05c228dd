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
use infergate_runtime::{LogFormat, Signals};

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
    /// Warm a model cache once: fetch (HTTP ranges) or copy (local/NFS) the files of a source's
    /// manifest.json into DEST, verified and atomically renamed; resumes an interrupted run.
    Warmup {
        /// `http://` or `https://` base URL, or a directory, with `manifest.json` at its root.
        #[arg(long)]
        source: String,
        /// The cache directory.
        #[arg(long)]
        dest: PathBuf,
        /// PEM bundle of the CAs that verify an https source (default: the system's roots).
        #[arg(long)]
        ca_file: Option<PathBuf>,
        #[arg(long, default_value = "model")]
        model: String,
        #[arg(long, default_value = "")]
        version: String,
        /// Files fetched at once.
        #[arg(long)]
        parallel_files: Option<usize>,
        /// Ranges fetched at once per file, at most.
        #[arg(long)]
        parallel_ranges: Option<usize>,
        /// Connections for the whole job, shared by the files in flight [default: two per
        /// CPU, 4 to 16].
        #[arg(long)]
        max_connections: Option<usize>,
        /// Bytes per range.
        #[arg(long)]
        chunk_size: Option<u64>,
        /// Bytes per second, all transfers together.
        #[arg(long)]
        bandwidth_cap: Option<u64>,
        #[arg(long)]
        retries: Option<u32>,
        /// Read the finished files once so that they start in the page cache.
        #[arg(long)]
        preread: bool,
    },
    /// Progressive canary releases run by a control process (docs/release.md).
    Release {
        #[command(subcommand)]
        verb: ReleaseVerb,
        /// Control's API.
        #[arg(long, global = true, default_value = infergate_control::release_cli::DEFAULT_CONTROL)]
        control: String,
    },
    /// Write DIR/manifest.json (path, size, sha256 of every file).
    Manifest { dir: PathBuf },
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

#[derive(Subcommand)]
enum ReleaseVerb {
    /// Submit a release and follow it: one line per step verdict. Exit 0 promoted, 3 rolled
    /// back or aborted, 1 on an error.
    Run {
        #[arg(long)]
        spec: PathBuf,
    },
    /// Submit a release and return.
    Start {
        #[arg(long)]
        spec: PathBuf,
    },
    /// Show one release, or all.
    Status { name: Option<String> },
    /// Stable 100 % at once.
    Abort { name: String },
    /// Canary 100 % at once.
    Promote { name: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Release { verb, control } => {
            use infergate_control::release_cli::{main as release, Verb};
            let verb = match &verb {
                ReleaseVerb::Run { spec } => Verb::Run(spec),
                ReleaseVerb::Start { spec } => Verb::Start(spec),
                ReleaseVerb::Status { name } => Verb::Status(name.as_deref()),
                ReleaseVerb::Abort { name } => Verb::Abort(name),
                ReleaseVerb::Promote { name } => Verb::Promote(name),
            };
            release(verb, &control)
        }
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
        Command::Manifest { dir } => match infergate_warmup::write_manifest(&dir) {
            Ok(m) => {
                println!(
                    "{}: {} files, {} bytes",
                    dir.join(infergate_warmup::MANIFEST_FILE).display(),
                    m.files.len(),
                    m.total_size()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Warmup {
            source,
            dest,
            ca_file,
            model,
            version,
            parallel_files,
            parallel_ranges,
            max_connections,
            chunk_size,
            bandwidth_cap,
            retries,
            preread,
        } => {
            let mut tuning = infergate_warmup::Tuning::default();
            if let Some(v) = parallel_files {
                tuning.parallel_files = v;
            }
            if let Some(v) = parallel_ranges {
                tuning.parallel_ranges = v;
            }
            if let Some(v) = max_connections {
                tuning.max_connections = v;
            }
            if let Some(v) = chunk_size {
                tuning.chunk_size = v;
            }
            if bandwidth_cap.is_some() {
                tuning.bandwidth_cap = bandwidth_cap;
            }
            if let Some(v) = retries {
                tuning.retries = v;
            }
            tuning.preread = preread;
            let source = match source.parse() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            warmup_once(infergate_warmup::WarmupJob {
                model,
                version,
                source,
                dest,
                ca_file,
                tuning,
            })
        }
    }
}

/// `infergate-control warmup`: one job in the foreground with a progress line on stderr.
/// SIGTERM or Ctrl-C stops it cleanly; the next run resumes.
fn warmup_once(job: infergate_warmup::WarmupJob) -> ExitCode {
    let rt = match infergate_runtime::runtime::multi_thread() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let mut signals = match Signals::install() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot watch signals: {e}");
                return ExitCode::FAILURE;
            }
        };
        let progress = Arc::new(infergate_warmup::Progress::new());
        let cancel = infergate_warmup::CancelToken::new();
        let mut run = tokio::spawn(infergate_warmup::run(job, progress.clone(), cancel.clone()));
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let mut stopping = false;
        let result = loop {
            tokio::select! {
                r = &mut run => break r,
                _ = tick.tick() => print_progress(&progress.snapshot(), tty),
                // Once stopping, further signals change nothing: the job ends at its next step.
                _ = signals.next(), if !stopping => {
                    eprintln!("\nstopping; run the same command again to resume");
                    stopping = true;
                    cancel.cancel();
                }
            }
        };
        print_progress(&progress.snapshot(), tty);
        if tty {
            eprintln!();
        }
        match result {
            Ok(Ok(report)) => {
                println!(
                    "warm: {} files ({} fetched, {} already in place), {} bytes transferred in {:.1} s",
                    report.files_total,
                    report.files_fetched,
                    report.files_skipped,
                    report.bytes_transferred,
                    report.elapsed_secs
                );
                if report.preread_bytes > 0 {
                    match report.resident_bytes {
                        Some(r) => println!(
                            "pre-read {} bytes; {} bytes ({:.1} %) resident in the page cache",
                            report.preread_bytes,
                            r,
                            100.0 * r as f64 / report.bytes_total.max(1) as f64
                        ),
                        None => println!(
                            "pre-read {} bytes (this file system cannot tell how much is resident)",
                            report.preread_bytes
                        ),
                    }
                }
                ExitCode::SUCCESS
            }
            Ok(Err(infergate_warmup::WarmupError::Cancelled)) => ExitCode::from(130),
            Ok(Err(e)) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn print_progress(p: &infergate_warmup::ProgressSnapshot, tty: bool) {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let pct = if p.bytes_total > 0 {
        100.0 * p.bytes_done as f64 / p.bytes_total as f64
    } else {
        0.0
    };
    let eta = if p.rate_bytes_per_sec > 0 {
        format!(
            "{:.0} s",
            p.bytes_total.saturating_sub(p.bytes_done) as f64 / p.rate_bytes_per_sec as f64
        )
    } else {
        "?".into()
    };
    let line = format!(
        "{} {:>5.1}%  {:.1}/{:.1} MiB  {:.1} MiB/s  ETA {eta}  files {}/{}",
        infergate_control::warmup::state_name(&p.state),
        pct,
        mib(p.bytes_done),
        mib(p.bytes_total),
        mib(p.rate_bytes_per_sec),
        p.files_done,
        p.files_total
    );
    if tty {
        eprint!("\r\x1b[2K{line}");
    } else {
        eprintln!("{line}");
    }
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
    infergate_runtime::logs::init(LogFormat::Json);
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
    let rt = match infergate_runtime::runtime::multi_thread() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    // Warmup jobs get threads of their own (see `Warmups::new`): one per core, at most 8 (a
    // job hashes at most `parallel_files` files at once; a GPU node has cores to spare, but
    // idle threads are no use).
    let warmup_threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    let warmup_rt = match infergate_runtime::runtime::pool("warmup", warmup_threads) {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the warmup runtime");
            return ExitCode::FAILURE;
        }
    };
    let warmup_handle = warmup_rt.handle().clone();
    let code = rt.block_on(async move {
        // Signal handlers go in before the address is announced.
        let mut signals = match Signals::install() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot watch signals");
                return ExitCode::FAILURE;
            }
        };
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
        let warmups =
            match infergate_control::warmup::Warmups::new(feed.clone(), &registry, warmup_handle) {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!(error = %e, "cannot register metrics");
                    return ExitCode::FAILURE;
                }
            };
        for job in &cfg.warmup {
            let name = format!("{} {}", job.model, job.version);
            if let Err(e) = job.to_job().and_then(|j| warmups.start(j)) {
                tracing::error!(job = %name, error = %e, "invalid warmup job");
                return ExitCode::from(1);
            }
        }
        let (release_events, driving) =
            match infergate_control::releases::kube::from_config(&cfg, &node).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!(error = %e, "cannot reach the Kubernetes API");
                    return ExitCode::FAILURE;
                }
            };
        let releases =
            match infergate_control::releases::start(&cfg, feed.clone(), &registry, release_events)
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "cannot register metrics");
                    return ExitCode::FAILURE;
                }
            };
        let release_runner = tokio::spawn(infergate_control::releases::runner::run(
            releases.clone(),
            driving,
        ));
        let registry_for_pods = registry.clone();
        let api = Arc::new(server::Api {
            feed: feed.clone(),
            metrics: registry,
            warmups: warmups.clone(),
            releases,
        });
        let _server = server::spawn(listener, api);
        tracing::info!(listener = "control", addr = %addr, node = %node, "listening");
        let policy = Policy::new(cfg.policy.clone());
        let interval = cfg.gpu.interval.get().max(Duration::from_millis(50));
        let pods = match &cfg.pod_resources {
            Some(p) => match infergate_control::pods::PodMetrics::new(&registry_for_pods) {
                Ok(m) => Some(tokio::spawn(infergate_control::pods::run(
                    infergate_podresources::Client::new(&p.socket, p.timeout.get()),
                    p.resources.clone(),
                    feed.clone(),
                    m,
                    p.interval.get(),
                ))),
                Err(e) => {
                    tracing::error!(error = %e, "cannot register metrics");
                    return ExitCode::FAILURE;
                }
            },
            None => None,
        };
        let control = tokio::spawn(run::run(probe, policy, feed, remediator, interval, metrics));
        signals.next().await;
        warmups.cancel_all();
        control.abort();
        release_runner.abort();
        if let Some(p) = pods {
            p.abort();
        }
        tracing::info!("shutting down");
        ExitCode::SUCCESS
    });
    // Cancelled jobs stop at their next step; finished chunks are already recorded.
    warmup_rt.shutdown_timeout(Duration::from_secs(5));
    code
}
