//! A backend's scheduler settings as the data path uses them (compiled from
//! `backends[].balancer`), and the reason an endpoint was chosen. The choice itself is in
//! [`crate::pick`]; the engine-state scraper ([`crate::engine`]) reads [`ScrapeSettings`].

use std::fmt;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use infergate_config::{Balancer, Engine, Policy};

mod ring;

pub use ring::Ring;

/// A backend's scheduler.
pub struct Scheduler {
    pub policy: Policy,
    /// `model_aware` weights: queue, KV use (per tenth), in-flight.
    pub w_queue: f64,
    pub w_kv: f64,
    pub w_in_flight: f64,
    pub kv_threshold: f64,
    pub queue_threshold: u32,
    pub stale_after: Duration,
    pub candidates: usize,
    pub affinity: Option<Affinity>,
    pub scrape: Option<Arc<ScrapeSettings>>,
    pub reason_header: bool,
    /// `round_robin`'s counter: the next turn.
    pub turn: AtomicUsize,
}

/// Prefix affinity of a backend, with the ring over its endpoints.
pub struct Affinity {
    pub block_bytes: usize,
    pub blocks: usize,
    pub load_factor: f64,
    pub ring: Ring,
}

/// How the engine state of a backend's endpoints is scraped.
#[derive(Debug, PartialEq)]
pub struct ScrapeSettings {
    pub path: Box<str>,
    pub interval: Duration,
    pub timeout: Duration,
    pub max_bytes: usize,
    pub concurrency: usize,
    pub names: MetricNames,
    /// Only series with this `model_name` label count.
    pub model_name: Option<Box<str>>,
}

/// The metric names read: waiting and running requests, and KV-cache use (the first name of
/// `kv` found on a page counts; later ones are fallbacks).
#[derive(Debug, PartialEq)]
pub struct MetricNames {
    pub queue: Box<str>,
    pub running: Box<str>,
    pub kv: Vec<Box<str>>,
}

impl MetricNames {
    pub fn preset(engine: Engine) -> MetricNames {
        match engine {
            Engine::Vllm => MetricNames {
                queue: "vllm:num_requests_waiting".into(),
                running: "vllm:num_requests_running".into(),
                kv: vec![
                    "vllm:kv_cache_usage_perc".into(),
                    "vllm:gpu_cache_usage_perc".into(),
                ],
            },
            Engine::Sglang => MetricNames {
                queue: "sglang:num_queue_reqs".into(),
                running: "sglang:num_running_reqs".into(),
                kv: vec!["sglang:token_usage".into()],
            },
        }
    }
}

impl Scheduler {
    /// The scheduler of `b` over endpoints with these URLs (in index order).
    pub fn new<'a>(b: &Balancer, urls: impl IntoIterator<Item = &'a str>) -> Scheduler {
        let affinity = b.prefix_affinity.as_ref().map(|a| Affinity {
            block_bytes: a.block_bytes as usize,
            blocks: a.blocks as usize,
            load_factor: a.load_factor,
            ring: Ring::new(urls, a.points),
        });
        let scrape = b.scrape().map(|e| {
            let names = match &e.names {
                Some(n) => MetricNames {
                    queue: n.queue.as_str().into(),
                    running: n.running.as_str().into(),
                    kv: vec![n.kv_usage.as_str().into()],
                },
                None => MetricNames::preset(e.engine),
            };
            Arc::new(ScrapeSettings {
                path: e.path.as_str().into(),
                interval: e.interval.get(),
                timeout: e.timeout.get(),
                max_bytes: usize::try_from(e.max_bytes.get()).unwrap_or(usize::MAX),
                concurrency: e.concurrency.max(1) as usize,
                names,
                model_name: e.model_name.as_deref().map(Into::into),
            })
        });
        Scheduler {
            policy: b.policy,
            w_queue: b.weights.queue,
            w_kv: b.weights.kv,
            w_in_flight: b.weights.in_flight,
            kv_threshold: b.kv_threshold,
            queue_threshold: b.queue_threshold,
            stale_after: b.stale_after.get(),
            candidates: b.candidates.max(1) as usize,
            affinity,
            scrape,
            reason_header: b.reason_header,
            turn: AtomicUsize::new(0),
        }
    }
}

/// Why an endpoint was chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reason {
    /// Power of two choices on in-flight requests.
    P2c { in_flight: u32 },
    /// The next endpoint in turn.
    RoundRobin { in_flight: u32 },
    /// Power of two choices on peak-EWMA latency × (in-flight + 1).
    LeastLatency { cost_ms: f64, in_flight: u32 },
    /// The lowest `model_aware` score among the candidates.
    ModelAware { score: f64, queue: u32, kv: f64 },
    /// A candidate's engine state was stale: the least in-flight among them.
    Stale { in_flight: u32 },
    /// Every candidate was past a threshold: the lowest score among them.
    Saturated { score: f64, queue: u32, kv: f64 },
    /// The prefix's home endpoint on the ring.
    AffinityHit,
    /// The home was over its load bound (or unusable): the next endpoint on the ring.
    Spill { hops: u32 },
    /// No usable endpoint: the one whose ejection ends first.
    LeastBad,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Reason::P2c { in_flight } => write!(f, "p2c in_flight={in_flight}"),
            Reason::RoundRobin { in_flight } => write!(f, "round_robin in_flight={in_flight}"),
            Reason::LeastLatency { cost_ms, in_flight } => {
                write!(
                    f,
                    "least_latency peak_ewma_ms={cost_ms:.1} in_flight={in_flight}"
                )
            }
            Reason::ModelAware { score, queue, kv } => {
                write!(f, "model_aware score={score:.2} queue={queue} kv={kv:.3}")
            }
            Reason::Stale { in_flight } => write!(f, "stale: in-flight in_flight={in_flight}"),
            Reason::Saturated { score, queue, kv } => write!(
                f,
                "model_aware all past threshold score={score:.2} queue={queue} kv={kv:.3}"
            ),
            Reason::AffinityHit => f.write_str("prefix-affinity hit"),
            Reason::Spill { hops } => write!(f, "prefix-affinity spill hops={hops}"),
            Reason::LeastBad => f.write_str("least bad: every endpoint is ejected"),
        }
    }
}
