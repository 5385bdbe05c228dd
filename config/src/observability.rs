//! Access logs and OpenTelemetry traces: both off by default. Read once at start; a reload
//! does not change them (docs/observability.md).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::units::Dur;

/// One JSON line per request (docs/observability.md lists the fields).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AccessLog {
    /// Write access-log lines. Default `false`.
    pub enabled: bool,
    /// `stdout`, or the path of a file that lines are appended to. Default `stdout`.
    pub path: String,
    /// Share of successful requests that are logged, 0.0 to 1.0. Requests that did not succeed
    /// are always logged. Default `1.0`.
    pub sample: f64,
    /// Lines waiting for the writer; a line that finds the queue full is dropped and counted in
    /// `infergate_access_log_dropped_total`, so the request path never waits. Default `8192`.
    pub queue: u32,
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog {
            enabled: false,
            path: "stdout".into(),
            sample: 1.0,
            queue: 8192,
        }
    }
}

/// OpenTelemetry traces, exported with OTLP over HTTP (protobuf). Off when absent.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tracing {
    /// Where spans are sent.
    pub otlp: Otlp,
    /// Share of new traces that are sampled, 0.0 to 1.0. A request whose `traceparent` carries
    /// a sampling decision follows it (parent-based). Default `1.0`.
    #[serde(default = "one")]
    pub sample: f64,
    /// The `service.name` resource attribute. Default `infergate`.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Finished requests' spans (a server span and its attempt spans) waiting for export; spans
    /// that find the queue full are dropped and counted in
    /// `infergate_trace_spans_dropped_total`. Default `4096`.
    #[serde(default = "default_span_queue")]
    pub queue: u32,
    /// Most spans in one export request. Default `512`.
    #[serde(default = "default_batch")]
    pub max_batch: u32,
    /// A batch is sent at the latest this long after its first span. Default `1s`.
    #[serde(default = "default_batch_delay")]
    pub batch_delay: Dur,
}

/// The OTLP/HTTP receiver.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Otlp {
    /// The traces URL, e.g. `http://127.0.0.1:4318/v1/traces` (plain HTTP; a collector beside
    /// the gateway).
    pub endpoint: String,
    /// Time allowed for one export request. Default `10s`.
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
}

fn one() -> f64 {
    1.0
}

fn default_service_name() -> String {
    "infergate".into()
}

fn default_span_queue() -> u32 {
    4096
}

fn default_batch() -> u32 {
    512
}

fn default_batch_delay() -> Dur {
    Dur::secs(1)
}

fn default_timeout() -> Dur {
    Dur::secs(10)
}

/// Checks `access_log` and `tracing`.
pub(crate) fn validate_observability(
    log: &AccessLog,
    tracing: Option<&Tracing>,
    push: &mut impl FnMut(String, String),
) {
    if !(0.0..=1.0).contains(&log.sample) {
        push(
            "access_log.sample".into(),
            format!("{} is not a fraction between 0 and 1", log.sample),
        );
    }
    if log.queue == 0 {
        push("access_log.queue".into(), "must be greater than 0".into());
    }
    if log.path.is_empty() {
        push(
            "access_log.path".into(),
            "must be `stdout` or a file path".into(),
        );
    }
    let Some(t) = tracing else {
        return;
    };
    if !(0.0..=1.0).contains(&t.sample) {
        push(
            "tracing.sample".into(),
            format!("{} is not a fraction between 0 and 1", t.sample),
        );
    }
    for (name, v) in [("queue", t.queue), ("max_batch", t.max_batch)] {
        if v == 0 {
            push(format!("tracing.{name}"), "must be greater than 0".into());
        }
    }
    if t.batch_delay.get().is_zero() {
        push(
            "tracing.batch_delay".into(),
            "must be greater than 0".into(),
        );
    }
    if t.otlp.timeout.get().is_zero() {
        push(
            "tracing.otlp.timeout".into(),
            "must be greater than 0".into(),
        );
    }
    let ep = &t.otlp.endpoint;
    match ep.parse::<http::Uri>() {
        Ok(u) if u.scheme_str() == Some("http") && u.authority().is_some() => {}
        Ok(_) => push(
            "tracing.otlp.endpoint".into(),
            format!("{ep:?} is not an http:// URL (https is not supported for export)"),
        ),
        Err(e) => push(
            "tracing.otlp.endpoint".into(),
            format!("{ep:?} is not a URL ({e})"),
        ),
    }
    if t.service_name.is_empty() {
        push("tracing.service_name".into(), "must not be empty".into());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn errors(log: &AccessLog, t: Option<&Tracing>) -> Vec<String> {
        let mut out = Vec::new();
        validate_observability(log, t, &mut |p, r| out.push(format!("{p}: {r}")));
        out
    }

    #[test]
    fn defaults_are_off_and_valid() {
        let log = AccessLog::default();
        assert!(!log.enabled);
        assert!(errors(&log, None).is_empty());
    }

    #[test]
    fn bad_values_are_reported_with_their_paths() {
        let log = AccessLog {
            sample: 1.5,
            queue: 0,
            ..AccessLog::default()
        };
        let t: Tracing = serde_json::from_value(serde_json::json!({
            "otlp": {"endpoint": "https://collector:4318/v1/traces"},
            "sample": -0.1,
            "max_batch": 0
        }))
        .unwrap();
        let e = errors(&log, Some(&t));
        assert_eq!(
            e,
            [
                "access_log.sample: 1.5 is not a fraction between 0 and 1",
                "access_log.queue: must be greater than 0",
                "tracing.sample: -0.1 is not a fraction between 0 and 1",
                "tracing.max_batch: must be greater than 0",
                "tracing.otlp.endpoint: \"https://collector:4318/v1/traces\" is not an http:// URL (https is not supported for export)",
            ]
        );
    }

    #[test]
    fn tracing_defaults() {
        let t: Tracing = serde_json::from_value(serde_json::json!({
            "otlp": {"endpoint": "http://127.0.0.1:4318/v1/traces"}
        }))
        .unwrap();
        assert_eq!(t.sample, 1.0);
        assert_eq!(t.service_name, "infergate");
        assert_eq!(t.otlp.timeout, Dur::secs(10));
        assert_eq!(t.queue, 4096);
    }
}
