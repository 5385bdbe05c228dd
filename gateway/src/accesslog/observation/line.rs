//! The access-log line of a request.

use infergate_wire::time::rfc3339_millis;
use serde::Serialize;
use tokio::time::Instant;

use super::{Finished, Observation};
use crate::trace::context::hex;

impl Observation {
    pub(super) fn line<'a>(&'a self, f: &'a Finished, end: Instant) -> Line<'a> {
        Line {
            time: rfc3339_millis(self.clock.ns(self.start)),
            request_id: &self.request_id,
            method: self.method.as_str(),
            path: &self.path,
            client: self.client.map(|c| c.to_string()),
            model: self.model.as_deref(),
            rule: self.rule.as_ref().map(|r| &*r.1),
            rule_index: self.rule.as_ref().map(|r| r.0),
            variant: self.variant.as_deref(),
            backend: self.backend.as_deref(),
            endpoint: self.attempts.last().map(|a| &*a.endpoint),
            status: f.status,
            outcome: f.outcome,
            error: f.error.as_deref(),
            ttft_s: f.ttft,
            tpot_s: f.tpot,
            duration_s: (end - self.start).as_secs_f64(),
            prompt_tokens: f.input_tokens,
            completion_tokens: f.output_tokens,
            attempts: self.attempts.len(),
            bytes_in: self.bytes_in,
            bytes_out: f.bytes_out,
            trace_id: self.trace.as_ref().map(|t| hex(&t.ctx.trace_id)),
        }
    }
}

/// One access-log line (docs/observability.md).
#[derive(Serialize)]
pub(super) struct Line<'a> {
    time: String,
    request_id: &'a str,
    method: &'a str,
    path: &'a str,
    client: Option<String>,
    model: Option<&'a str>,
    rule: Option<&'a str>,
    rule_index: Option<usize>,
    variant: Option<&'a str>,
    backend: Option<&'a str>,
    endpoint: Option<&'a str>,
    status: u16,
    outcome: &'a str,
    error: Option<&'a str>,
    ttft_s: Option<f64>,
    tpot_s: Option<f64>,
    duration_s: f64,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    attempts: usize,
    bytes_in: u64,
    bytes_out: u64,
    trace_id: Option<String>,
}
