//! `infergate-sim`: an OpenAI-compatible model-server simulator (see `infergate_loadtest::sim`).
//!
//! After binding it prints exactly one line to stdout, `infergate-sim listening on
//! http://ADDR` with the bound address (so `--listen 127.0.0.1:0` works), and serves until
//! SIGTERM or SIGINT, then exits 0. It exits 1 when it cannot bind and 2 on invalid flags.
//! Logs go to stderr (`RUST_LOG`, default `warn`). Every flag is documented in `--help` and
//! in `loadtest/README.md`.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use infergate_loadtest::sim::{
    FaultRule, KvModel, MetricSets, SimConfig, Simulator, DEFAULT_BLOCK_SIZE,
};

/// OpenAI-compatible model-server simulator with vLLM's wire behaviour, timing, capacity
/// model, metrics and faults on demand.
///
/// Routes: POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses,
/// /v1/audio/transcriptions, /v1/rerank, /v1/score; GET /v1/models, /health, /metrics
/// (vLLM's Prometheus metrics). KServe v2: GET /v2/health/ready, /v2/models/NAME[/ready],
/// POST /v2/models/NAME[/versions/V]/infer. Stable Diffusion WebUI: POST
/// /sdapi/v1/txt2img, /sdapi/v1/img2img, GET /sdapi/v1/progress. ComfyUI: POST /prompt,
/// GET /history/ID, /view, /queue, /ws (WebSocket).
///
/// Per-request faults: header `x-sim-fault: SPEC` (or `none`) applies always and overrides
/// --fault. SPEC is status=CODE (400-599), hang, hang-body, stall-after=N, drop-after=N or
/// delay=MS.
#[derive(Parser, Debug)]
#[command(name = "infergate-sim", version, about, long_about)]
struct Args {
    /// Address to listen on (HTTP/1.1 and h2c); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:9101")]
    listen: SocketAddr,
    /// Model name to serve; repeat for several. The first labels the metrics (model_name).
    #[arg(long = "model", value_name = "NAME", default_value = "demo")]
    models: Vec<String>,
    /// Mean time to first token, in milliseconds, counted from when the request gets a
    /// running slot.
    #[arg(long, value_name = "N", default_value_t = 50)]
    ttft_ms: u64,
    /// Standard deviation of the time to first token, in milliseconds (normal draws clamped
    /// to [0.3, 1.7] x the mean); 0 = exact.
    #[arg(long, value_name = "N", default_value_t = 0)]
    ttft_stddev_ms: u64,
    /// Mean inter-token latency, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 10)]
    itl_ms: u64,
    /// Standard deviation of each inter-token gap, in milliseconds (clamped to [0.3, 1.7] x
    /// the mean); 0 = exact.
    #[arg(long, value_name = "N", default_value_t = 0)]
    itl_stddev_ms: u64,
    /// Prefill cost: adds X * prompt_tokens / 1000 milliseconds to the time to first token.
    #[arg(long, value_name = "X", default_value_t = 0.0, value_parser = non_negative_ms)]
    prefill_ms_per_1k_tokens: f64,
    /// Seed of the random draws (timing, fault rates): the same seed and request order
    /// repeat them. Default: a random seed.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Output tokens for requests that set neither max_tokens nor max_completion_tokens.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_tokens: u32,
    /// Most requests generating at once (streaming or not); the others wait in a FIFO queue
    /// and their time to first token starts when they get a slot. Default: unlimited.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..u64::from(u32::MAX)))]
    max_running: Option<u64>,
    /// Most requests waiting for a slot (with --max-running); beyond it requests get 429.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    max_waiting: usize,
    /// KV-cache capacity in tokens: vllm:kv_cache_usage_perc is the running requests'
    /// prompt + generated tokens over this (at most 1). With --kv-model, the hard capacity.
    #[arg(long, value_name = "N", default_value_t = 65536,
          value_parser = clap::value_parser!(u64).range(1..))]
    kv_cache_tokens: u64,
    /// Model the KV cache like vLLM: requests take blocks of --block-size tokens for their
    /// prompt and output, wait (FIFO) when the cache is full, and the newest running request
    /// is preempted (and later recomputed) when a running one needs a block and none is
    /// free. Full prompt blocks are cached (LRU) and prefill covers only uncached tokens.
    #[arg(long)]
    kv_model: bool,
    /// Tokens per KV block (with --kv-model).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BLOCK_SIZE,
          value_parser = clap::value_parser!(u32).range(1..))]
    block_size: u32,
    /// Turn the prefix cache off (with --kv-model).
    #[arg(long)]
    no_prefix_cache: bool,
    /// Metric names served on /metrics: a comma-separated list of vllm (vLLM's current
    /// names), vllm-legacy (vllm:gpu_cache_usage_perc for the KV use) and sglang
    /// (sglang:num_running_reqs, sglang:num_queue_reqs, sglang:token_usage,
    /// sglang:cache_hit_rate).
    #[arg(long, value_name = "LIST", default_value = "vllm")]
    metrics: MetricSets,
    /// Name of this instance, sent in `x-sim-instance` by the KServe v2, ComfyUI and
    /// Stable Diffusion WebUI routes. Default: the bound address.
    #[arg(long, value_name = "NAME")]
    instance: Option<String>,
    /// Time of one image sampling step, in milliseconds (ComfyUI KSampler steps, WebUI
    /// `steps`).
    #[arg(long, value_name = "N", default_value_t = 20)]
    image_step_ms: u64,
    /// Inject a fault into a fraction of inference requests; repeatable. For each request
    /// the faults are drawn in order and the first that hits applies. SPEC: status=CODE
    /// (400-599, OpenAI error body), hang (no response head), hang-body (200 event-stream
    /// head, then nothing), stall-after=N (N token events, then silence), drop-after=N (N
    /// token events, then an aborted connection) or delay=MS (extra delay before the
    /// response head). RATE: a fraction in [0, 1], default 1.
    #[arg(long = "fault", value_name = "SPEC[@RATE]")]
    faults: Vec<FaultRule>,
    /// Slow start: for the first N milliseconds, GET /health and inference requests get 503.
    #[arg(long, value_name = "N", default_value_t = 0)]
    startup_ms: u64,
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

/// A finite, non-negative number of milliseconds.
fn non_negative_ms(s: &str) -> Result<f64, String> {
    let value: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if value.is_finite() && value >= 0.0 && Duration::try_from_secs_f64(value / 1000.0).is_ok() {
        Ok(value)
    } else {
        Err(format!(
            "`{s}` must be a finite number of milliseconds, at least 0"
        ))
    }
}

impl Args {
    fn sim_config(&self) -> SimConfig {
        SimConfig {
            models: self.models.clone(),
            ttft: Duration::from_millis(self.ttft_ms),
            ttft_stddev: Duration::from_millis(self.ttft_stddev_ms),
            itl: Duration::from_millis(self.itl_ms),
            itl_stddev: Duration::from_millis(self.itl_stddev_ms),
            prefill_per_1k_tokens: Duration::try_from_secs_f64(
                self.prefill_ms_per_1k_tokens / 1000.0,
            )
            .unwrap_or(Duration::ZERO),
            seed: self.seed,
            default_max_tokens: self.max_tokens,
            max_running: self
                .max_running
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            max_waiting: self.max_waiting,
            kv_cache_tokens: self.kv_cache_tokens,
            kv_model: self.kv_model.then_some(KvModel {
                block_size: self.block_size,
                prefix_caching: !self.no_prefix_cache,
            }),
            metric_sets: self.metrics,
            instance: self.instance.clone(),
            image_step: Duration::from_millis(self.image_step_ms),
            faults: self.faults.clone(),
            startup: Duration::from_millis(self.startup_ms),
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
    // Signal handlers go in before the address is announced: a SIGTERM sent right after the
    // announcement must find them.
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(err) => {
            eprintln!("infergate-sim: cannot listen for signals: {err}");
            return ExitCode::FAILURE;
        }
    };
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
    let signal = signals.wait().await;
    tracing::info!(signal, "shutting down");
    sim.shutdown();
    ExitCode::SUCCESS
}

/// SIGTERM and SIGINT, watched from the moment of `install`.
#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Signals)
    }

    async fn wait(self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "ctrl-c"
    }
}
