//! Prometheus metrics. The registry is owned by the gateway and passed down; label handles for
//! each (model, backend, variant, endpoint) are resolved when a snapshot is compiled, and each
//! outcome counter once on first use, so the request path never looks a label set up.

use std::sync::OnceLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// How a request ended; the `outcome` label of `infergate_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream answered 2xx and the whole response reached the client.
    Success,
    /// The upstream answered 4xx (passed through).
    Upstream4xx,
    /// The upstream answered 5xx (passed through).
    Upstream5xx,
    /// The gateway could not connect to the endpoint.
    ConnectError,
    /// The upstream failed after connecting (reset, protocol error, cut stream).
    UpstreamError,
    TimeoutConnect,
    TimeoutFirstToken,
    TimeoutIdle,
    TimeoutTotal,
    /// The client went away before the response ended.
    ClientCancelled,
    /// Malformed request, missing model, unknown path or method.
    BadRequest,
    BodyTooLarge,
    UnknownModel,
    /// No endpoint of the model's backend could take the request.
    NoEndpoint,
    /// The model exists but none of its routes matched the request.
    NoRoute,
    /// The listener's in-flight or connection limit was reached (503 with `Retry-After`).
    Overloaded,
}

impl Outcome {
    pub const ALL: [Outcome; 16] = [
        Outcome::Success,
        Outcome::Upstream4xx,
        Outcome::Upstream5xx,
        Outcome::ConnectError,
        Outcome::UpstreamError,
        Outcome::TimeoutConnect,
        Outcome::TimeoutFirstToken,
        Outcome::TimeoutIdle,
        Outcome::TimeoutTotal,
        Outcome::ClientCancelled,
        Outcome::BadRequest,
        Outcome::BodyTooLarge,
        Outcome::UnknownModel,
        Outcome::NoEndpoint,
        Outcome::NoRoute,
        Outcome::Overloaded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Upstream4xx => "upstream_4xx",
            Outcome::Upstream5xx => "upstream_5xx",
            Outcome::ConnectError => "connect_error",
            Outcome::UpstreamError => "upstream_error",
            Outcome::TimeoutConnect => "timeout_connect",
            Outcome::TimeoutFirstToken => "timeout_first_token",
            Outcome::TimeoutIdle => "timeout_idle",
            Outcome::TimeoutTotal => "timeout_total",
            Outcome::ClientCancelled => "client_cancelled",
            Outcome::BadRequest => "bad_request",
            Outcome::BodyTooLarge => "body_too_large",
            Outcome::UnknownModel => "unknown_model",
            Outcome::NoEndpoint => "no_endpoint",
            Outcome::Overloaded => "overloaded",
            Outcome::NoRoute => "no_route",
        }
    }

    /// The endpoint failure this outcome stands for, if any. Client cancellations and the total
    /// timeout (a long answer, not a sick endpoint) are not failures.
    pub fn failure(self) -> Option<crate::endpoint::Failure> {
        use crate::endpoint::Failure;
        match self {
            Outcome::Upstream5xx => Some(Failure::Status5xx),
            Outcome::ConnectError => Some(Failure::Connect),
            Outcome::UpstreamError => Some(Failure::Reset),
            Outcome::TimeoutConnect | Outcome::TimeoutFirstToken => Some(Failure::Timeout),
            Outcome::TimeoutIdle => Some(Failure::Stall),
            _ => None,
        }
    }

    /// Whether the endpoint answered as it should (2xx, or a 4xx that is the client's fault).
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Success | Outcome::Upstream4xx)
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The outcome of a response passed through with this status.
    pub fn for_status(status: http::StatusCode) -> Outcome {
        if status.is_server_error() {
            Outcome::Upstream5xx
        } else if status.is_client_error() {
            Outcome::Upstream4xx
        } else {
            Outcome::Success
        }
    }
}

/// Buckets that resolve a 10 ms TTFT at the low end and reach 10 minutes.
pub const TTFT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.125, 0.15,
    0.175, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0,
];
/// Buckets that resolve a 1 ms TPOT at the low end and reach 2 minutes.
pub const TPOT_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009, 0.01, 0.0125,
    0.015, 0.0175, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05, 0.06, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5,
    0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// Buckets for whole requests, 5 ms to 30 minutes.
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
    90.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0,
];

const ROUTE_LABELS: &[&str] = &["model", "backend", "variant", "endpoint"];

/// Every metric the data plane exports.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    ttft: HistogramVec,
    tpot: HistogramVec,
    duration: HistogramVec,
    input_tokens: IntCounterVec,
    output_tokens: IntCounterVec,
    in_flight: IntGaugeVec,
    ejected: IntGaugeVec,
    ejections: IntCounterVec,
    failures: IntCounterVec,
    retries: IntCounterVec,
    reloads: IntCounterVec,
    connections: IntGaugeVec,
    shadow: IntCounterVec,
    feed_stale: IntGaugeVec,
    rejected: [OnceLock<IntCounter>; Outcome::ALL.len()],
}

fn register<C: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    c: prometheus::Result<C>,
) -> prometheus::Result<C> {
    let c = c?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let r = Registry::new();
        let hist = |name: &str, help: &str, buckets: &[f64]| {
            register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                    ROUTE_LABELS,
                ),
            )
        };
        let ttft = hist(
            "infergate_time_to_first_token_seconds",
            "Time from receiving the request head to writing the first token-carrying SSE event to the client.",
            TTFT_BUCKETS,
        )?;
        let tpot = hist(
            "infergate_time_per_output_token_seconds",
            "Per streamed request: (last token event - first token event) / (output tokens - 1), for requests with at least 2 output tokens.",
            TPOT_BUCKETS,
        )?;
        let duration = hist(
            "infergate_request_duration_seconds",
            "Time from receiving the request head to the end of the response, for requests sent to an endpoint.",
            DURATION_BUCKETS,
        )?;
        let requests = register(
            &r,
            IntCounterVec::new(
                Opts::new("infergate_requests_total", "Requests by how they ended."),
                &["model", "backend", "variant", "endpoint", "outcome"],
            ),
        )?;
        let input_tokens = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "infergate_input_tokens_total",
                    "Prompt tokens, from the upstream's usage.",
                ),
                ROUTE_LABELS,
            ),
        )?;
        let output_tokens = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "infergate_output_tokens_total",
                    "Output tokens, from the upstream's usage, else the count of token events.",
                ),
                ROUTE_LABELS,
            ),
        )?;
        let in_flight = register(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "infergate_endpoint_in_flight",
                    "Requests in flight on an endpoint, counted until their response ends.",
                ),
                &["backend", "endpoint"],
            ),
        )?;
        let ejected = register(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "infergate_endpoint_ejected",
                    "1 while the endpoint is ejected by outlier detection, else 0.",
                ),
                &["backend", "endpoint"],
            ),
        )?;
        let ejections = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "infergate_endpoint_ejections_total",
                    "Ejections of an endpoint, by reason.",
                ),
                &["backend", "endpoint", "reason"],
            ),
        )?;
        let failures = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "infergate_upstream_failures_total",
                    "Failed attempts on an endpoint (retried or not), by kind.",
                ),
                &["backend", "endpoint", "reason"],
            ),
        )?;
        let retries = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "infergate_retries_total",
                    "Retry decisions: `retried` on another endpoint, or not retried because the `budget` or `attempts` ran out.",
                ),
                &["backend", "result"],
            ),
        )?;
        let reloads = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "infergate_config_reloads_total",
                    "Config reloads by result (success, failure).",
                ),
                &["result"],
            ),
        )?;
        let connections = register(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "infergate_connections_open",
                    "Open client connections per listener.",
                ),
                &["listener"],
            ),
        )?;
        let shadow = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "infergate_shadow_requests_total",
                    "Shadow copies: `sent`, or `skipped` because max_concurrency copies were in flight.",
                ),
                &["model", "variant", "result"],
            ),
        )?;
        let feed_stale = register(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "infergate_health_feed_stale",
                    "1 when a health feed could not be read for stale_after and its state was dropped (fail open).",
                ),
                &["feed"],
            ),
        )?;
        let build = register(
            &r,
            IntGaugeVec::new(
                Opts::new("infergate_build_info", "Build information; always 1."),
                &["version"],
            ),
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        Ok(Metrics {
            registry: r,
            requests,
            ttft,
            tpot,
            duration,
            input_tokens,
            output_tokens,
            in_flight,
            ejected,
            ejections,
            failures,
            retries,
            reloads,
            connections,
            shadow,
            feed_stale,
            rejected: Default::default(),
        })
    }

    /// Resolves the label handles of one (model, backend, variant, endpoint).
    pub fn route(&self, model: &str, backend: &str, variant: &str, endpoint: &str) -> RouteMetrics {
        let labels = [model, backend, variant, endpoint];
        RouteMetrics {
            labels: labels.map(Box::<str>::from),
            requests: self.requests.clone(),
            outcomes: Default::default(),
            ttft: self.ttft.with_label_values(&labels),
            tpot: self.tpot.with_label_values(&labels),
            duration: self.duration.with_label_values(&labels),
            input_tokens: self.input_tokens.with_label_values(&labels),
            output_tokens: self.output_tokens.with_label_values(&labels),
        }
    }

    /// Counts a request rejected before it was routed (its model label is empty: the value is
    /// the client's and would make the label set unbounded).
    pub fn rejected(&self, outcome: Outcome) {
        self.rejected[outcome.index()]
            .get_or_init(|| {
                self.requests
                    .with_label_values(&["", "", "", "", outcome.as_str()])
            })
            .inc();
    }

    /// Resolves the per-endpoint handles.
    pub fn endpoint(&self, backend: &str, endpoint: &str) -> EndpointMetrics {
        let labels = [backend, endpoint];
        EndpointMetrics {
            labels: labels.map(Box::<str>::from),
            in_flight: self.in_flight.with_label_values(&labels),
            ejected: self.ejected.with_label_values(&labels),
            ejections: self.ejections.with_label_values(&[
                backend,
                endpoint,
                "consecutive_failures",
            ]),
            failures_vec: self.failures.clone(),
            failures: Default::default(),
        }
    }

    pub fn retries(&self, backend: &str, result: &str) -> IntCounter {
        self.retries.with_label_values(&[backend, result])
    }

    pub fn reload(&self, ok: bool) {
        self.reloads
            .with_label_values(&[if ok { "success" } else { "failure" }])
            .inc();
    }

    /// Counts a shadow copy. Not on the client's path: it runs only for sampled requests.
    pub fn shadow(&self, model: &str, variant: &str, result: &str) {
        self.shadow
            .with_label_values(&[model, variant, result])
            .inc();
    }

    pub fn feed_stale(&self, feed: &str) -> IntGauge {
        self.feed_stale.with_label_values(&[feed])
    }

    pub fn connections(&self, listener: &str) -> IntGauge {
        self.connections.with_label_values(&[listener])
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail on I/O; a family that fails to encode is skipped.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// Handles of one endpoint of a backend.
pub struct EndpointMetrics {
    labels: [Box<str>; 2],
    pub in_flight: IntGauge,
    pub ejected: IntGauge,
    pub ejections: IntCounter,
    failures_vec: IntCounterVec,
    failures: [OnceLock<IntCounter>; 5],
}

impl EndpointMetrics {
    pub fn failure(&self, f: crate::endpoint::Failure) {
        self.failures[f as usize]
            .get_or_init(|| {
                let [b, e] = &self.labels;
                self.failures_vec.with_label_values(&[b, e, f.as_str()])
            })
            .inc();
    }
}

/// Handles of one (model, backend, variant, endpoint).
pub struct RouteMetrics {
    labels: [Box<str>; 4],
    requests: IntCounterVec,
    outcomes: [OnceLock<IntCounter>; Outcome::ALL.len()],
    pub ttft: Histogram,
    pub tpot: Histogram,
    pub duration: Histogram,
    pub input_tokens: IntCounter,
    pub output_tokens: IntCounter,
}

impl RouteMetrics {
    pub fn count(&self, outcome: Outcome) {
        self.outcomes[outcome.index()]
            .get_or_init(|| {
                let [m, b, v, e] = &self.labels;
                self.requests
                    .with_label_values(&[m, b, v, e, outcome.as_str()])
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_indices_match_their_position() {
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(o.index(), i);
        }
    }

    #[test]
    fn buckets_are_sorted_and_fine_at_the_low_end() {
        for b in [TTFT_BUCKETS, TPOT_BUCKETS, DURATION_BUCKETS] {
            assert!(b.windows(2).all(|w| w[0] < w[1]));
            assert!(*b.last().unwrap() >= 120.0);
        }
        assert!(TTFT_BUCKETS
            .windows(2)
            .take_while(|w| w[1] <= 0.1)
            .all(|w| w[1] - w[0] <= 0.0101));
        assert!(TPOT_BUCKETS
            .windows(2)
            .take_while(|w| w[1] <= 0.01)
            .all(|w| w[1] - w[0] <= 0.00101));
    }

    #[test]
    fn encodes_counts_with_labels() {
        let m = Metrics::new().unwrap();
        let r = m.route("demo", "b", "b", "http://127.0.0.1:1");
        r.count(Outcome::Success);
        r.count(Outcome::Success);
        r.ttft.observe(0.3);
        m.rejected(Outcome::UnknownModel);
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(text.contains(r#"infergate_requests_total{backend="b",endpoint="http://127.0.0.1:1",model="demo",outcome="success",variant="b"} 2"#), "{text}");
        assert!(text.contains(r#"infergate_requests_total{backend="",endpoint="",model="",outcome="unknown_model",variant=""} 1"#));
        assert!(text.contains("infergate_time_to_first_token_seconds_count{"));
        assert!(text.contains("infergate_build_info{version="));
    }
}
