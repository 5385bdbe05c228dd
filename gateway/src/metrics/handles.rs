//! Metric handles resolved when a snapshot is compiled. Each series is created on its first use
//! (one `OnceLock` read on the request path after that).

use std::sync::{Arc, OnceLock};

use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec};

use super::{Families, Outcome};
use crate::endpoint::Failure;

fn hist<'a>(cell: &'a OnceLock<Histogram>, vec: &HistogramVec, labels: &[&str]) -> &'a Histogram {
    cell.get_or_init(|| vec.with_label_values(labels))
}

fn counter<'a>(
    cell: &'a OnceLock<IntCounter>,
    vec: &IntCounterVec,
    labels: &[&str],
) -> &'a IntCounter {
    cell.get_or_init(|| vec.with_label_values(labels))
}

/// Histograms and token counters of one (model, backend, variant).
pub struct VariantMetrics {
    families: Arc<Families>,
    labels: [Box<str>; 3],
    ttft: OnceLock<Histogram>,
    tpot: OnceLock<Histogram>,
    duration: OnceLock<Histogram>,
    input_tokens: OnceLock<IntCounter>,
    output_tokens: OnceLock<IntCounter>,
    request_bytes: OnceLock<IntCounter>,
    response_bytes: OnceLock<IntCounter>,
}

impl VariantMetrics {
    pub(super) fn new(families: Arc<Families>, labels: [&str; 3]) -> Self {
        VariantMetrics {
            families,
            labels: labels.map(Box::<str>::from),
            ttft: OnceLock::new(),
            tpot: OnceLock::new(),
            duration: OnceLock::new(),
            input_tokens: OnceLock::new(),
            output_tokens: OnceLock::new(),
            request_bytes: OnceLock::new(),
            response_bytes: OnceLock::new(),
        }
    }

    fn label_refs(&self) -> [&str; 3] {
        let [m, b, v] = &self.labels;
        [m, b, v]
    }

    /// (model, backend, variant)
    pub fn labels(&self) -> [&str; 3] {
        self.label_refs()
    }
}

/// The handles of one endpoint of a variant: its outcome counters, the variant's histograms,
/// and (opt-in) the endpoint's own histograms.
pub struct RouteMetrics {
    variant: Arc<VariantMetrics>,
    endpoint: Box<str>,
    outcomes: [OnceLock<IntCounter>; Outcome::ALL.len()],
    /// TTFT, TPOT, duration per endpoint, when `metrics.endpoint_histograms` is on.
    histograms: Option<[OnceLock<Histogram>; 3]>,
}

impl RouteMetrics {
    pub(super) fn new(variant: Arc<VariantMetrics>, endpoint: &str, histograms: bool) -> Self {
        RouteMetrics {
            variant,
            endpoint: endpoint.into(),
            outcomes: Default::default(),
            histograms: histograms.then(Default::default),
        }
    }

    fn member_labels(&self) -> [&str; 4] {
        let [m, b, v] = self.variant.label_refs();
        [m, b, v, &self.endpoint]
    }

    pub fn count(&self, outcome: Outcome) {
        let [m, b, v, e] = self.member_labels();
        counter(
            &self.outcomes[outcome.index()],
            &self.variant.families.requests,
            &[m, b, v, e, outcome.as_str()],
        )
        .inc();
    }

    /// The request's duration, in seconds.
    pub fn duration(&self, seconds: f64) {
        self.observe(2, seconds);
    }

    pub fn ttft(&self, seconds: f64) {
        self.observe(0, seconds);
    }

    pub fn tpot(&self, seconds: f64) {
        self.observe(1, seconds);
    }

    /// 0: TTFT, 1: TPOT, 2: duration.
    fn observe(&self, which: usize, seconds: f64) {
        let v = &self.variant;
        let f = &v.families;
        let (cell, vec, ep_vec) = match which {
            0 => (&v.ttft, &f.ttft, &f.endpoint_ttft),
            1 => (&v.tpot, &f.tpot, &f.endpoint_tpot),
            _ => (&v.duration, &f.duration, &f.endpoint_duration),
        };
        hist(cell, vec, &v.label_refs()).observe(seconds);
        if let Some(h) = &self.histograms {
            hist(&h[which], ep_vec, &self.member_labels()).observe(seconds);
        }
    }

    pub fn tokens(&self, input: Option<u64>, output: u64) {
        let v = &self.variant;
        let labels = v.label_refs();
        if let Some(p) = input {
            counter(&v.input_tokens, &v.families.input_tokens, &labels).inc_by(p);
        }
        counter(&v.output_tokens, &v.families.output_tokens, &labels).inc_by(output);
    }

    /// Body bytes of one request: sent upstream (`request`) and passed to the client
    /// (`response`).
    pub fn bytes(&self, request: u64, response: u64) {
        let v = &self.variant;
        let labels = v.label_refs();
        counter(&v.request_bytes, &v.families.request_bytes, &labels).inc_by(request);
        counter(&v.response_bytes, &v.families.response_bytes, &labels).inc_by(response);
    }

    /// `infergate_gateway_overhead_seconds` (one series for the whole gateway).
    pub fn overhead(&self, seconds: f64) {
        self.variant.families.overhead.observe(seconds);
    }

    /// The endpoint label.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn variant(&self) -> &Arc<VariantMetrics> {
        &self.variant
    }

    pub fn has_histograms(&self) -> bool {
        self.histograms.is_some()
    }
}

/// Handles of one endpoint of a backend.
pub struct EndpointMetrics {
    families: Arc<Families>,
    labels: [Box<str>; 2],
    ejections: OnceLock<IntCounter>,
    failures: [OnceLock<IntCounter>; Failure::ALL.len()],
}

impl EndpointMetrics {
    pub(super) fn new(families: Arc<Families>, backend: &str, endpoint: &str) -> Self {
        EndpointMetrics {
            families,
            labels: [backend.into(), endpoint.into()],
            ejections: OnceLock::new(),
            failures: Default::default(),
        }
    }

    pub fn failure(&self, f: Failure) {
        let [b, e] = &self.labels;
        counter(
            &self.failures[f as usize],
            &self.families.failures,
            &[b, e, f.as_str()],
        )
        .inc();
    }

    /// Counts an outlier ejection.
    pub fn ejected(&self) {
        let [b, e] = &self.labels;
        counter(
            &self.ejections,
            &self.families.ejections,
            &[b, e, "consecutive_failures"],
        )
        .inc();
    }
}
