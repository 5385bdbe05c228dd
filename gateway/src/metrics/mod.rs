//! Prometheus metrics. The registry is owned by the gateway and passed down. Label handles for
//! each (model, backend, variant) and each of its endpoints are made when a snapshot is
//! compiled; each series is created on its first use, so the request path never looks a label
//! set up and a table of many idle endpoints costs nothing on the metrics page.
//!
//! The cardinality is bounded by the table (docs/metrics.md gives the formula): histograms carry
//! `model`, `backend` and `variant`; per-endpoint series are counters, plus the `in_flight` and
//! `ejected` gauges that the admin listener renders from the live snapshot at each scrape. The
//! series of a model, variant or endpoint that leaves the table are removed by the writer
//! ([`Metrics::retire_member`] and friends). Per-endpoint histograms are opt-in
//! (`metrics.endpoint_histograms`).

mod buckets;
mod discovery;
mod handles;
mod observability;
mod outcome;
mod release;

use std::sync::{Arc, OnceLock};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub use buckets::{DURATION_BUCKETS, TPOT_BUCKETS, TTFT_BUCKETS};
pub use discovery::DiscoveryMetrics;
pub use handles::{EndpointMetrics, RouteMetrics, VariantMetrics};
pub use observability::{ObservabilityMetrics, OVERHEAD_BUCKETS};
pub use outcome::Outcome;

/// The families whose series are created per model, variant or endpoint.
pub(crate) struct Families {
    /// model, backend, variant, endpoint, outcome
    pub requests: IntCounterVec,
    /// model, backend, variant
    pub ttft: HistogramVec,
    pub tpot: HistogramVec,
    pub duration: HistogramVec,
    pub input_tokens: IntCounterVec,
    pub output_tokens: IntCounterVec,
    pub request_bytes: IntCounterVec,
    pub response_bytes: IntCounterVec,
    /// model, backend, variant, endpoint (opt-in)
    pub endpoint_ttft: HistogramVec,
    pub endpoint_tpot: HistogramVec,
    pub endpoint_duration: HistogramVec,
    /// backend, endpoint, reason
    pub ejections: IntCounterVec,
    pub failures: IntCounterVec,
    /// `infergate_gateway_overhead_seconds` (no labels)
    pub overhead: prometheus::Histogram,
}

/// Every metric the data plane exports, except the per-endpoint gauges (rendered from the
/// snapshot by the admin listener).
pub struct Metrics {
    registry: Registry,
    families: Arc<Families>,
    retries: IntCounterVec,
    reloads: IntCounterVec,
    connections: IntGaugeVec,
    closed: IntCounterVec,
    shadow: IntCounterVec,
    feed_stale: IntGaugeVec,
    discovery: discovery::DiscoveryFamilies,
    releases: release::ReleaseFamilies,
    rejected: [OnceLock<IntCounter>; Outcome::ALL.len()],
    observability: ObservabilityMetrics,
}

const VARIANT_LABELS: &[&str] = &["model", "backend", "variant"];
const MEMBER_LABELS: &[&str] = &["model", "backend", "variant", "endpoint"];

fn register<C: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    c: prometheus::Result<C>,
) -> prometheus::Result<C> {
    let c = c?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn counters(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    register(r, IntCounterVec::new(Opts::new(name, help), labels))
}

fn gauges(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    register(r, IntGaugeVec::new(Opts::new(name, help), labels))
}

const TTFT_HELP: &str = "Time from receiving the request head to writing the first token-carrying SSE event to the client.";
const TPOT_HELP: &str = "Per streamed request: (last token event - first token event) / (output tokens - 1), for requests with at least 2 output tokens.";
const DURATION_HELP: &str = "Time from receiving the request head to the end of the response, for requests sent to an endpoint.";

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let r = Registry::new();
        let hist = |name: &str, help: &str, buckets: &[f64], labels: &[&str]| {
            register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                    labels,
                ),
            )
        };
        let families = Families {
            requests: counters(
                &r,
                "infergate_requests_total",
                "Requests by how they ended.",
                &["model", "backend", "variant", "endpoint", "outcome"],
            )?,
            ttft: hist(
                "infergate_time_to_first_token_seconds",
                TTFT_HELP,
                TTFT_BUCKETS,
                VARIANT_LABELS,
            )?,
            tpot: hist(
                "infergate_time_per_output_token_seconds",
                TPOT_HELP,
                TPOT_BUCKETS,
                VARIANT_LABELS,
            )?,
            duration: hist(
                "infergate_request_duration_seconds",
                DURATION_HELP,
                DURATION_BUCKETS,
                VARIANT_LABELS,
            )?,
            input_tokens: counters(
                &r,
                "infergate_input_tokens_total",
                "Prompt tokens, from the upstream's usage.",
                VARIANT_LABELS,
            )?,
            output_tokens: counters(
                &r,
                "infergate_output_tokens_total",
                "Output tokens, from the upstream's usage, else the count of token events.",
                VARIANT_LABELS,
            )?,
            request_bytes: counters(
                &r,
                "infergate_request_bytes_total",
                "Request body bytes of requests sent to an upstream.",
                VARIANT_LABELS,
            )?,
            response_bytes: counters(
                &r,
                "infergate_response_bytes_total",
                "Response body bytes passed to the client (for a WebSocket, the bytes sent to the client).",
                VARIANT_LABELS,
            )?,
            endpoint_ttft: hist(
                "infergate_endpoint_time_to_first_token_seconds",
                TTFT_HELP,
                TTFT_BUCKETS,
                MEMBER_LABELS,
            )?,
            endpoint_tpot: hist(
                "infergate_endpoint_time_per_output_token_seconds",
                TPOT_HELP,
                TPOT_BUCKETS,
                MEMBER_LABELS,
            )?,
            endpoint_duration: hist(
                "infergate_endpoint_request_duration_seconds",
                DURATION_HELP,
                DURATION_BUCKETS,
                MEMBER_LABELS,
            )?,
            ejections: counters(
                &r,
                "infergate_endpoint_ejections_total",
                "Ejections of an endpoint, by reason.",
                &["backend", "endpoint", "reason"],
            )?,
            failures: counters(
                &r,
                "infergate_upstream_failures_total",
                "Failed attempts on an endpoint (retried or not), by kind.",
                &["backend", "endpoint", "reason"],
            )?,
            overhead: observability::overhead(&r)?,
        };
        let retries = counters(
            &r,
            "infergate_retries_total",
            "Retry decisions: `retried` on another endpoint, or not retried because the `budget` or `attempts` ran out.",
            &["backend", "result"],
        )?;
        let reloads = counters(
            &r,
            "infergate_config_reloads_total",
            "Config reloads by result (success, failure).",
            &["result"],
        )?;
        let connections = gauges(
            &r,
            "infergate_connections_open",
            "Open client connections per listener.",
            &["listener"],
        )?;
        let closed = counters(
            &r,
            "infergate_connections_closed_total",
            "Client connections the gateway closed because the client broke a protocol limit, by reason.",
            &["listener", "reason"],
        )?;
        let shadow = counters(
            &r,
            "infergate_shadow_requests_total",
            "Shadow copies: `sent`, or `skipped` because max_concurrency copies were in flight.",
            &["model", "variant", "result"],
        )?;
        let feed_stale = gauges(
            &r,
            "infergate_health_feed_stale",
            "1 when a health feed could not be read for stale_after and its state was dropped (fail open).",
            &["feed"],
        )?;
        let build = gauges(
            &r,
            "infergate_build_info",
            "Build information; always 1.",
            &["version"],
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let discovery = discovery::DiscoveryFamilies::new(&r)?;
        let releases = release::ReleaseFamilies::new(&r)?;
        let observability = ObservabilityMetrics::new(&r)?;
        Ok(Metrics {
            registry: r,
            families: Arc::new(families),
            retries,
            reloads,
            connections,
            closed,
            shadow,
            feed_stale,
            discovery,
            releases,
            rejected: Default::default(),
            observability,
        })
    }

    /// The handles of one (model, backend, variant).
    pub fn variant(&self, model: &str, backend: &str, variant: &str) -> Arc<VariantMetrics> {
        Arc::new(VariantMetrics::new(
            self.families.clone(),
            [model, backend, variant],
        ))
    }

    /// The handles of one endpoint of a variant (`endpoint` empty for outcomes that reached no
    /// endpoint); `histograms` adds the opt-in per-endpoint histograms.
    pub fn member(
        &self,
        variant: &Arc<VariantMetrics>,
        endpoint: &str,
        histograms: bool,
    ) -> RouteMetrics {
        RouteMetrics::new(variant.clone(), endpoint, histograms)
    }

    /// Counts a request rejected before it was routed (its model label is empty: the value is
    /// the client's and would make the label set unbounded).
    pub fn rejected(&self, outcome: Outcome) {
        self.rejected[outcome.index()]
            .get_or_init(|| {
                self.families
                    .requests
                    .with_label_values(&["", "", "", "", outcome.as_str()])
            })
            .inc();
    }

    /// The handles of one endpoint of a backend.
    pub fn endpoint(&self, backend: &str, endpoint: &str) -> EndpointMetrics {
        EndpointMetrics::new(self.families.clone(), backend, endpoint)
    }

    /// Removes every series of one (model, backend, variant): it left the table.
    pub fn retire_variant(&self, model: &str, backend: &str, variant: &str) {
        let f = &self.families;
        let labels = [model, backend, variant];
        for h in [&f.ttft, &f.tpot, &f.duration] {
            let _ = h.remove_label_values(&labels);
        }
        for c in [
            &f.input_tokens,
            &f.output_tokens,
            &f.request_bytes,
            &f.response_bytes,
        ] {
            let _ = c.remove_label_values(&labels);
        }
    }

    /// Removes every series of one endpoint of a variant: it left the variant.
    pub fn retire_member(&self, model: &str, backend: &str, variant: &str, endpoint: &str) {
        let f = &self.families;
        for o in Outcome::ALL {
            let _ =
                f.requests
                    .remove_label_values(&[model, backend, variant, endpoint, o.as_str()]);
        }
        let labels = [model, backend, variant, endpoint];
        for h in [&f.endpoint_ttft, &f.endpoint_tpot, &f.endpoint_duration] {
            let _ = h.remove_label_values(&labels);
        }
    }

    /// Removes every series of an endpoint of a backend: it left the backend.
    pub fn retire_endpoint(&self, backend: &str, endpoint: &str) {
        let f = &self.families;
        let _ = f
            .ejections
            .remove_label_values(&[backend, endpoint, "consecutive_failures"]);
        for r in crate::endpoint::Failure::ALL {
            let _ = f
                .failures
                .remove_label_values(&[backend, endpoint, r.as_str()]);
        }
    }

    /// Drops every per-endpoint histogram (they were switched off).
    pub fn clear_endpoint_histograms(&self) {
        let f = &self.families;
        for h in [&f.endpoint_ttft, &f.endpoint_tpot, &f.endpoint_duration] {
            h.reset();
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

    /// The series of discovery source `source` (a backend's name, or `health_feeds[N]`).
    pub fn discovery(&self, source: &str) -> DiscoveryMetrics {
        self.discovery.source(source)
    }

    /// Sets the release series: (name, model, weights, stale) of every release held.
    pub fn releases<'a>(
        &self,
        releases: impl Iterator<
            Item = (
                &'a str,
                &'a str,
                &'a std::collections::BTreeMap<String, u32>,
                bool,
            ),
        >,
    ) {
        self.releases.set(releases);
    }

    /// Removes the series of a discovery source that left the config.
    pub fn retire_discovery(&self, source: &str) {
        self.discovery.retire(source);
    }

    /// The connection metrics of one listener.
    pub fn connections(&self, listener: &str) -> ListenerMetrics {
        ListenerMetrics {
            open: self.connections.with_label_values(&[listener]),
            closed: ClosedConnections {
                counters: self.closed.clone(),
                listener: listener.to_owned(),
            },
        }
    }

    /// The counters of the access log and the trace exporter.
    pub fn observability(&self) -> &ObservabilityMetrics {
        &self.observability
    }

    /// The text exposition of every registered metric.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail on I/O; a family that fails to encode is skipped.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// The connection metrics of one listener.
#[derive(Clone)]
pub struct ListenerMetrics {
    /// `infergate_connections_open`
    pub open: IntGauge,
    pub closed: ClosedConnections,
}

/// `infergate_connections_closed_total` of one listener. A series is made on the first close
/// for its reason: closes are rare, and the reasons are a fixed set (docs/metrics.md).
#[derive(Clone)]
pub struct ClosedConnections {
    counters: IntCounterVec,
    listener: String,
}

impl ClosedConnections {
    pub fn inc(&self, reason: &str) {
        self.counters
            .with_label_values(&[self.listener.as_str(), reason])
            .inc();
    }
}

#[cfg(test)]
mod tests;
