//! Building OTLP span messages: attributes, events, and the times of tokio instants.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::{status, Span, Status};
use tokio::time::Instant;

/// Maps the request's monotonic instants to wall-clock nanoseconds since the epoch.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
    wall_ns: u64,
}

impl Clock {
    /// A clock whose `start` is now.
    pub fn new(start: Instant) -> Self {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        // Read the monotonic clock after the wall clock: `start` may be a little earlier.
        let back = Instant::now().saturating_duration_since(start);
        let wall_ns = u64::try_from(wall.saturating_sub(back).as_nanos()).unwrap_or(u64::MAX);
        Clock { start, wall_ns }
    }

    pub fn ns(&self, at: Instant) -> u64 {
        let d = at.saturating_duration_since(self.start);
        self.wall_ns
            .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

pub fn kv(key: &str, v: impl Into<Val>) -> KeyValue {
    let value = match v.into() {
        Val::S(s) => any_value::Value::StringValue(s),
        Val::I(i) => any_value::Value::IntValue(i),
        Val::F(f) => any_value::Value::DoubleValue(f),
        Val::B(b) => any_value::Value::BoolValue(b),
    };
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// An attribute value.
pub enum Val {
    S(String),
    I(i64),
    F(f64),
    B(bool),
}

impl From<&str> for Val {
    fn from(s: &str) -> Self {
        Val::S(s.to_owned())
    }
}
impl From<String> for Val {
    fn from(s: String) -> Self {
        Val::S(s)
    }
}
impl From<u64> for Val {
    fn from(i: u64) -> Self {
        Val::I(i64::try_from(i).unwrap_or(i64::MAX))
    }
}
impl From<f64> for Val {
    fn from(f: f64) -> Self {
        Val::F(f)
    }
}
impl From<bool> for Val {
    fn from(b: bool) -> Self {
        Val::B(b)
    }
}

pub fn event(name: &str, at_ns: u64, attributes: Vec<KeyValue>) -> Event {
    Event {
        time_unix_nano: at_ns,
        name: name.to_owned(),
        attributes,
        dropped_attributes_count: 0,
    }
}

/// The parts of a span that vary.
pub struct SpanParts {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent: Option<[u8; 8]>,
    pub trace_state: String,
    pub name: String,
    pub server: bool,
    pub start_ns: u64,
    pub end_ns: u64,
    pub attributes: Vec<KeyValue>,
    pub events: Vec<Event>,
    /// `Some(message)`: the span's status is Error.
    pub error: Option<String>,
}

pub fn build(p: SpanParts) -> Span {
    let kind = if p.server {
        SpanKind::Server
    } else {
        SpanKind::Client
    };
    Span {
        trace_id: p.trace_id.to_vec(),
        span_id: p.span_id.to_vec(),
        trace_state: p.trace_state,
        parent_span_id: p.parent.map(|s| s.to_vec()).unwrap_or_default(),
        // Bit 8 (0x100): the span's parent-is-remote flag is known; bit 9: it is remote.
        flags: 0x100
            | if p.server && p.parent.is_some() {
                0x200
            } else {
                0
            }
            | 1,
        name: p.name,
        kind: kind as i32,
        start_time_unix_nano: p.start_ns,
        end_time_unix_nano: p.end_ns.max(p.start_ns),
        attributes: p.attributes,
        events: p.events,
        status: Some(match p.error {
            Some(message) => Status {
                message,
                code: status::StatusCode::Error as i32,
            },
            None => Status::default(),
        }),
        ..Default::default()
    }
}
