//! The series of access logs, trace export and the gateway's own overhead (docs/observability.md).

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

use super::register;

/// Buckets of `infergate_gateway_overhead_seconds`: 25 µs to 250 ms.
pub const OVERHEAD_BUCKETS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25,
];

pub(super) fn overhead(r: &Registry) -> prometheus::Result<Histogram> {
    register(
        r,
        Histogram::with_opts(
            HistogramOpts::new(
                "infergate_gateway_overhead_seconds",
                "Time the gateway itself adds to a request sent to an endpoint: from the request being whole to the upstream request being handed to the connection, plus from the upstream's first body frame to the client's first frame.",
            )
            .buckets(OVERHEAD_BUCKETS.to_vec()),
        ),
    )
}

/// Counters of the access log and the trace exporter.
pub struct ObservabilityMetrics {
    /// `infergate_access_log_dropped_total`
    pub access_log_dropped: IntCounter,
    /// `infergate_trace_spans_dropped_total{reason="queue_full"}`
    pub spans_dropped_queue: IntCounter,
    /// `infergate_trace_spans_dropped_total{reason="export_failed"}`
    pub spans_dropped_export: IntCounter,
    /// `infergate_trace_spans_exported_total`
    pub spans_exported: IntCounter,
}

impl ObservabilityMetrics {
    pub(super) fn new(r: &Registry) -> prometheus::Result<Self> {
        let dropped = register(
            r,
            IntCounter::with_opts(Opts::new(
                "infergate_access_log_dropped_total",
                "Access-log lines dropped because the writer's queue was full.",
            )),
        )?;
        let spans = register(
            r,
            IntCounterVec::new(
                Opts::new(
                    "infergate_trace_spans_dropped_total",
                    "Spans dropped: `queue_full` (the export queue was full) or `export_failed`.",
                ),
                &["reason"],
            ),
        )?;
        let exported = register(
            r,
            IntCounter::with_opts(Opts::new(
                "infergate_trace_spans_exported_total",
                "Spans the OTLP receiver accepted.",
            )),
        )?;
        Ok(ObservabilityMetrics {
            access_log_dropped: dropped,
            spans_dropped_queue: spans.with_label_values(&["queue_full"]),
            spans_dropped_export: spans.with_label_values(&["export_failed"]),
            spans_exported: exported,
        })
    }
}
