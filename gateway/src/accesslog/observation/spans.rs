//! The spans of a request: its server span (with the routing, first-token and end-of-stream
//! events) and one client span per upstream attempt.

use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::time::Instant;

use super::{Finished, Observation};
use crate::trace::span::{build, event, kv, SpanParts};
use crate::trace::RequestTrace;

impl Observation {
    pub(super) fn spans(&self, t: &RequestTrace, f: &Finished, end: Instant) -> Vec<Span> {
        let c = &self.clock;
        let op = operation(&self.path);
        let name = match (op, &self.model) {
            (Some(op), Some(m)) => format!("{op} {m}"),
            _ => format!("{} {}", self.method, self.path),
        };
        let mut attrs = vec![
            kv("http.request.method", self.method.as_str()),
            kv("url.path", self.path.as_str()),
            kv("http.response.status_code", u64::from(f.status)),
            kv("http.request.body.size", self.bytes_in),
            kv("http.response.body.size", f.bytes_out),
            kv("infergate.request_id", self.request_id.as_str()),
            kv("infergate.outcome", f.outcome),
            kv("infergate.attempts", self.attempts.len() as u64),
        ];
        if let Some(op) = op {
            attrs.push(kv("gen_ai.operation.name", op));
        }
        if let Some(m) = &self.model {
            attrs.push(kv("gen_ai.request.model", m.as_str()));
        }
        if let Some(n) = f.input_tokens {
            attrs.push(kv("gen_ai.usage.input_tokens", n));
        }
        if let Some(n) = f.output_tokens {
            attrs.push(kv("gen_ai.usage.output_tokens", n));
        }
        if let Some(a) = self.client {
            attrs.push(kv("client.address", a.ip().to_string()));
            attrs.push(kv("client.port", u64::from(a.port())));
        }
        for (k, v) in [
            ("infergate.variant", &self.variant),
            ("infergate.backend", &self.backend),
        ] {
            if let Some(v) = v {
                attrs.push(kv(k, &**v));
            }
        }
        if let Some(a) = self.attempts.last() {
            attrs.push(kv("infergate.endpoint", &*a.endpoint));
        }
        if !f.success {
            attrs.push(kv("error.type", f.outcome));
        }
        let mut events = Vec::new();
        if let (Some(at), Some((idx, rule))) = (self.routed_at, &self.rule) {
            events.push(event(
                "routing",
                c.ns(at),
                vec![
                    kv("infergate.rule", &**rule),
                    kv("infergate.rule_index", *idx as u64),
                    kv("infergate.variant", self.variant.as_deref().unwrap_or("")),
                ],
            ));
        }
        if let Some(at) = f.first_token {
            let mut a = Vec::new();
            if let Some(s) = f.ttft {
                a.push(kv("infergate.ttft_seconds", s));
            }
            events.push(event("first_token", c.ns(at), a));
        }
        if self.attempts.last().is_some_and(|a| a.status.is_some()) {
            let mut a = vec![kv("infergate.outcome", f.outcome)];
            if let Some(n) = f.output_tokens {
                a.push(kv("gen_ai.usage.output_tokens", n));
            }
            events.push(event("end_of_stream", c.ns(end), a));
        }
        let trace_state = t
            .ctx
            .state
            .as_ref()
            .and_then(|s| s.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let mut spans = Vec::with_capacity(1 + self.attempts.len());
        spans.push(build(SpanParts {
            trace_id: t.ctx.trace_id,
            span_id: t.span_id,
            parent: t.ctx.parent,
            trace_state: trace_state.clone(),
            name,
            server: true,
            start_ns: c.ns(self.start),
            end_ns: c.ns(end),
            attributes: attrs,
            events,
            error: (f.status >= 500).then(|| f.error.clone().unwrap_or_else(|| f.outcome.into())),
        }));
        for (i, a) in self.attempts.iter().enumerate() {
            let mut attrs = vec![
                kv("http.request.method", self.method.as_str()),
                kv("url.full", format!("{}{}", a.endpoint, self.path)),
                kv("infergate.attempt", i as u64 + 1),
            ];
            if let Some(s) = a.status {
                attrs.push(kv("http.response.status_code", u64::from(s)));
            }
            if let Some(e) = a.error {
                attrs.push(kv("error.type", e));
            }
            let failed = a.error.is_some() || a.status.is_some_and(|s| s >= 500);
            spans.push(build(SpanParts {
                trace_id: t.ctx.trace_id,
                span_id: a.span_id,
                parent: Some(t.span_id),
                trace_state: trace_state.clone(),
                name: self.method.as_str().to_owned(),
                server: false,
                start_ns: c.ns(a.start),
                end_ns: c.ns(a.end.unwrap_or(end)),
                attributes: attrs,
                events: Vec::new(),
                error: failed.then(|| a.error.unwrap_or("upstream_status").to_owned()),
            }));
        }
        spans
    }
}

/// `gen_ai.operation.name` of an OpenAI path.
fn operation(path: &str) -> Option<&'static str> {
    match path {
        "/v1/chat/completions" | "/v1/responses" => Some("chat"),
        "/v1/completions" => Some("text_completion"),
        "/v1/embeddings" => Some("embeddings"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_follow_the_path() {
        assert_eq!(operation("/v1/chat/completions"), Some("chat"));
        assert_eq!(operation("/v1/embeddings"), Some("embeddings"));
        assert_eq!(operation("/v2/models/x/infer"), None);
    }
}
