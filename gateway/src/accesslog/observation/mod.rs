//! One request's record for the access log and the trace: filled in as the request goes
//! (routing, each upstream attempt) and written once, when it ends: [`line`] makes the
//! access-log line, [`spans`] the spans.

mod line;
mod spans;

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{HeaderMap, HeaderValue};
use http::Method;
use tokio::time::Instant;

use super::Observers;
use crate::trace::context::new_span_id;
use crate::trace::span::Clock;
use crate::trace::RequestTrace;

/// Longest path kept in a log line or span; the rest is cut.
const MAX_PATH: usize = 256;

/// What the request's end adds to its record.
#[derive(Debug, Default)]
pub struct Finished {
    pub status: u16,
    /// The metric outcome (`success`, `upstream_error`, …).
    pub outcome: &'static str,
    pub success: bool,
    /// The gateway's error message, for requests that failed in the gateway.
    pub error: Option<String>,
    pub first_token: Option<Instant>,
    pub ttft: Option<f64>,
    pub tpot: Option<f64>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub bytes_out: u64,
}

struct Attempt {
    endpoint: Box<str>,
    span_id: [u8; 8],
    start: Instant,
    end: Option<Instant>,
    status: Option<u16>,
    error: Option<&'static str>,
}

/// One request's record.
pub struct Observation {
    observers: Arc<Observers>,
    request_id: String,
    method: Method,
    path: String,
    client: Option<SocketAddr>,
    start: Instant,
    clock: Clock,
    bytes_in: u64,
    model: Option<String>,
    rule: Option<(usize, Box<str>)>,
    variant: Option<Box<str>>,
    backend: Option<Box<str>>,
    routed_at: Option<Instant>,
    attempts: Vec<Attempt>,
    trace: Option<RequestTrace>,
}

impl Observation {
    pub(super) fn new(
        observers: Arc<Observers>,
        method: &Method,
        path: &str,
        client: Option<SocketAddr>,
        request_id: &HeaderValue,
        start: Instant,
        trace: Option<RequestTrace>,
    ) -> Self {
        let mut cut = path.len().min(MAX_PATH);
        while !path.is_char_boundary(cut) {
            cut -= 1;
        }
        Observation {
            observers,
            request_id: String::from_utf8_lossy(request_id.as_bytes()).into_owned(),
            method: method.clone(),
            path: path[..cut].to_owned(),
            client,
            start,
            clock: Clock::new(start),
            bytes_in: 0,
            model: None,
            rule: None,
            variant: None,
            backend: None,
            routed_at: None,
            attempts: Vec::new(),
            trace,
        }
    }

    /// The request's trace, when tracing is on.
    pub fn trace(&self) -> Option<&RequestTrace> {
        self.trace.as_ref()
    }

    /// The routing decision: model, rule (index and name), variant and its backend.
    pub fn routed(
        &mut self,
        model: &str,
        rule: (usize, &str),
        variant: &str,
        backend: &str,
        bytes_in: usize,
    ) {
        self.model = Some(model.to_owned());
        self.rule = Some((rule.0, rule.1.into()));
        self.variant = Some(variant.into());
        self.backend = Some(backend.into());
        self.bytes_in = bytes_in as u64;
        self.routed_at = Some(Instant::now());
    }

    /// An attempt on `endpoint` starts: its span id is made and, when tracing, `traceparent`
    /// (and the client's `tracestate`) are written into the upstream request's headers.
    pub fn attempt_started(&mut self, endpoint: &str, headers: &mut HeaderMap) {
        let span_id = new_span_id();
        if let Some(t) = &self.trace {
            t.inject(&span_id, headers);
        }
        self.attempts.push(Attempt {
            endpoint: endpoint.into(),
            span_id,
            start: Instant::now(),
            end: None,
            status: None,
            error: None,
        });
    }

    /// The current attempt's response head arrived.
    pub fn attempt_status(&mut self, status: u16) {
        if let Some(a) = self.attempts.last_mut() {
            a.status = Some(status);
        }
    }

    /// The current attempt failed with `outcome` (the metric outcome of its error).
    pub fn attempt_failed(&mut self, outcome: &'static str) {
        if let Some(a) = self.attempts.last_mut() {
            a.end.get_or_insert(Instant::now());
            a.error = Some(outcome);
        }
    }

    /// Writes the log line and the spans of a request that ended.
    pub fn finish(mut self: Box<Self>, f: Finished) {
        let end = Instant::now();
        if let Some(a) = self.attempts.last_mut() {
            a.end.get_or_insert(end);
        }
        if let Some(log) = &self.observers.log {
            if log.keeps(f.success) {
                match serde_json::to_vec(&self.line(&f, end)) {
                    Ok(line) => log.write(line),
                    Err(e) => tracing::debug!(error = %e, "access-log line not written"),
                }
            }
        }
        if let (Some(tracer), Some(t)) = (&self.observers.tracer, &self.trace) {
            if t.sampled {
                tracer.submit(self.spans(t, &f, end));
            }
        }
    }
}
