//! OpenTelemetry traces: one server span per request, a client span per upstream attempt,
//! exported with OTLP over HTTP (protobuf). Off unless `tracing` is configured; then a request
//! costs one [`RequestTrace`] and, when sampled, its spans are built once, when it ends, and
//! handed to the exporter's bounded queue without waiting. docs/observability.md lists the
//! attributes and events.

pub mod context;
mod export;
pub mod span;

use http::header::HeaderMap;
use opentelemetry_proto::tonic::trace::v1::Span;
use prometheus::IntCounter;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use context::TraceContext;

/// The tracer the gateway holds while `tracing` is configured.
pub struct Tracer {
    tx: mpsc::Sender<Vec<Span>>,
    ratio: f64,
    dropped: IntCounter,
}

/// The exporter's counters.
#[derive(Clone)]
pub struct TraceCounters {
    /// Spans dropped because the queue was full.
    pub dropped_queue: IntCounter,
    /// Spans dropped because their export failed.
    pub dropped_export: IntCounter,
    /// Spans the receiver accepted.
    pub exported: IntCounter,
}

/// A request's place in its trace.
#[derive(Clone, Debug)]
pub struct RequestTrace {
    pub ctx: TraceContext,
    /// The gateway's server span.
    pub span_id: [u8; 8],
    /// Whether spans are recorded and exported; propagated upstream as the `sampled` flag.
    pub sampled: bool,
}

impl RequestTrace {
    /// Writes `traceparent` (a child of the gateway's span: the attempt's span id) and the
    /// client's `tracestate` into an upstream request's headers.
    pub fn inject(&self, attempt_span: &[u8; 8], headers: &mut HeaderMap) {
        headers.insert(
            context::TRACEPARENT.clone(),
            context::traceparent(&self.ctx.trace_id, attempt_span, self.sampled),
        );
        match &self.ctx.state {
            Some(s) => {
                headers.insert(context::TRACESTATE.clone(), s.clone());
            }
            None => {
                headers.remove(&context::TRACESTATE);
            }
        }
    }
}

impl Tracer {
    /// Starts the exporter task on the current runtime.
    pub fn start(
        cfg: &infergate_config::Tracing,
        counters: TraceCounters,
    ) -> Result<(Tracer, JoinHandle<()>), String> {
        let queue = usize::try_from(cfg.queue).unwrap_or(usize::MAX).max(1);
        let (tx, rx) = mpsc::channel(queue);
        let task = export::spawn(cfg, rx, counters.clone())?;
        Ok((
            Tracer {
                tx,
                ratio: cfg.sample,
                dropped: counters.dropped_queue,
            },
            task,
        ))
    }

    /// The trace of a request with these headers: the client's, or a new one; sampled as the
    /// client decided, else by the configured ratio.
    pub fn begin(&self, headers: &HeaderMap) -> RequestTrace {
        let ctx = TraceContext::from_headers(headers);
        let sampled = match ctx.parent_sampled {
            Some(s) => s,
            None => ratio_sampled(&ctx.trace_id, self.ratio),
        };
        RequestTrace {
            ctx,
            span_id: context::new_span_id(),
            sampled,
        }
    }

    /// Queues a request's spans for export; drops them (counted) when the queue is full.
    pub fn submit(&self, spans: Vec<Span>) {
        let n = spans.len() as u64;
        if self.tx.try_send(spans).is_err() {
            self.dropped.inc_by(n);
        }
    }
}

/// The trace-id ratio rule of OpenTelemetry's `TraceIdRatioBased` sampler: the low 8 bytes of
/// the trace id, shifted right by one, below `ratio` × 2^63.
pub fn ratio_sampled(trace_id: &[u8; 16], ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio <= 0.0 {
        return false;
    }
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    let x = u64::from_be_bytes(low) >> 1;
    // ratio < 1, so the bound is below 2^63 and fits.
    let bound = (ratio * (1u64 << 63) as f64) as u64;
    x < bound
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_ratio_sampler_keeps_about_its_share() {
        assert!(ratio_sampled(&[0xff; 16], 1.0));
        assert!(!ratio_sampled(&[0; 16], 0.0));
        let kept = (0..10_000)
            .filter(|_| ratio_sampled(&context::new_trace_id(), 0.25))
            .count();
        assert!((2000..3000).contains(&kept), "{kept}");
    }

    #[test]
    fn sampling_follows_the_clients_flag_else_the_ratio() {
        let (tx, _rx) = mpsc::channel(1);
        let never = Tracer {
            tx,
            ratio: 0.0,
            dropped: IntCounter::new("d", "d").unwrap(),
        };
        let mut h = HeaderMap::new();
        assert!(!never.begin(&h).sampled);
        h.insert(
            &context::TRACEPARENT,
            http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        );
        let t = never.begin(&h);
        assert!(t.sampled);
        assert_ne!(t.span_id, [0; 8]);
        assert_eq!(
            t.ctx.parent,
            Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
        );
    }

    #[test]
    fn a_full_queue_drops_and_counts_spans() {
        let (tx, _rx) = mpsc::channel(1);
        let dropped = IntCounter::new("d", "d").unwrap();
        let t = Tracer {
            tx,
            ratio: 1.0,
            dropped: dropped.clone(),
        };
        t.submit(vec![Span::default(), Span::default()]);
        assert_eq!(dropped.get(), 0);
        t.submit(vec![Span::default(), Span::default(), Span::default()]);
        assert_eq!(dropped.get(), 3);
    }

    #[test]
    fn inject_writes_a_child_traceparent_and_the_clients_state() {
        let mut h = HeaderMap::new();
        h.insert(
            &context::TRACEPARENT,
            http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            ),
        );
        h.insert(&context::TRACESTATE, http::HeaderValue::from_static("a=b"));
        let t = RequestTrace {
            ctx: TraceContext::from_headers(&h),
            span_id: [1; 8],
            sampled: false,
        };
        let mut up = HeaderMap::new();
        t.inject(&[2; 8], &mut up);
        assert_eq!(
            up[&context::TRACEPARENT],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0202020202020202-00"
        );
        assert_eq!(up[&context::TRACESTATE], "a=b");
    }
}
