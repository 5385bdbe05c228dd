//! The access-log line of a request.

use serde::Serialize;
use tokio::time::Instant;

use super::{Finished, Observation};
use crate::trace::context::hex;

impl Observation {
    pub(super) fn line<'a>(&'a self, f: &'a Finished, end: Instant) -> Line<'a> {
        Line {
            time: rfc3339(self.clock.ns(self.start)),
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

/// `2026-01-02T03:04:05.678Z` of nanoseconds since the epoch.
fn rfc3339(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let millis = (ns / 1_000_000) % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(1_709_251_199_123_000_000),
            "2024-02-29T23:59:59.123Z"
        );
        assert_eq!(rfc3339(951_782_400_000_000_000), "2000-02-29T00:00:00.000Z");
    }
}
