//! One request's measurements, kept compact (microsecond integers) in memory and written as
//! milliseconds in the JSON document.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// 2xx, and the stream ended with `data: [DONE]`.
    Ok,
    /// A 4xx status (or any other non-2xx status below 500).
    #[serde(rename = "http_4xx")]
    Http4xx,
    /// A 5xx status.
    #[serde(rename = "http_5xx")]
    Http5xx,
    /// `--timeout` passed before the response ended.
    Timeout,
    /// No response head: the connection could not be made or failed before a response.
    Connect,
    /// The response started (2xx) but the stream failed: an SSE error event, a cut body, or
    /// an end without `[DONE]`.
    StreamError,
}

impl Kind {
    pub const ERRORS: [Kind; 5] = [
        Kind::Http4xx,
        Kind::Http5xx,
        Kind::Timeout,
        Kind::Connect,
        Kind::StreamError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ok => "ok",
            Kind::Http4xx => "http_4xx",
            Kind::Http5xx => "http_5xx",
            Kind::Timeout => "timeout",
            Kind::Connect => "connect",
            Kind::StreamError => "stream_error",
        }
    }

    pub fn from_status(status: u16) -> Kind {
        if status >= 500 {
            Kind::Http5xx
        } else {
            Kind::Http4xx
        }
    }
}

/// One request. Times are microseconds; `scheduled_us` and `sent_us` are relative to the
/// start of the step, the others to `sent_us`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Record {
    /// Index of the request in its step (the index that seeds its prompt).
    pub id: u64,
    /// When it was due: the arrival time (open loop) or when its worker became free (closed
    /// loop).
    #[serde(rename = "scheduled_ms", deserialize_with = "ms::deserialize")]
    pub scheduled_us: u64,
    /// When it was sent (just before the request was handed to the connection pool).
    #[serde(rename = "sent_ms", deserialize_with = "ms::deserialize")]
    pub sent_us: u64,
    /// Send to the first token event.
    #[serde(rename = "ttft_ms", deserialize_with = "opt_ms::deserialize", default)]
    pub ttft_us: Option<u64>,
    /// Send to the end of the response (or its failure).
    #[serde(rename = "e2e_ms", deserialize_with = "ms::deserialize")]
    pub e2e_us: u64,
    /// Each gap between successive token events.
    #[serde(rename = "itl_ms", deserialize_with = "ms_list::deserialize", default)]
    pub itl_us: Box<[u32]>,
    /// `usage.prompt_tokens`, when reported.
    #[serde(default)]
    pub input_tokens: Option<u64>,
    /// `usage.completion_tokens` when reported, else the number of token events.
    pub output_tokens: u64,
    /// Token events received.
    pub token_events: u64,
    /// Whether the token counts came from `usage`.
    pub usage_reported: bool,
    /// `max_tokens` sent (none: the server's default).
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// The HTTP status, when a response head arrived.
    #[serde(default)]
    pub status: Option<u16>,
    pub kind: Kind,
    /// What went wrong (status body, transport error, SSE error message), truncated.
    #[serde(default)]
    pub error: Option<String>,
    /// FNV-1a of the request body (not written per record; the step's digest combines them).
    #[serde(skip)]
    pub digest: u64,
}

impl Record {
    /// TPOT in microseconds: `(last token event − first token event) / (output tokens − 1)`,
    /// for a request with a first token and at least 2 output tokens.
    pub fn tpot_us(&self) -> Option<f64> {
        self.ttft_us?;
        if self.output_tokens < 2 {
            return None;
        }
        let span: u64 = self.itl_us.iter().map(|&g| u64::from(g)).sum();
        Some(span as f64 / (self.output_tokens - 1) as f64)
    }

    /// Send lag: actual − scheduled send, in microseconds (never negative).
    pub fn send_lag_us(&self) -> u64 {
        self.sent_us.saturating_sub(self.scheduled_us)
    }

    /// When the response ended, relative to the start of the step.
    pub fn end_us(&self) -> u64 {
        self.sent_us.saturating_add(self.e2e_us)
    }

    pub fn ok(&self) -> bool {
        self.kind == Kind::Ok
    }
}

/// Microseconds as milliseconds (a float with up to 3 decimals).
pub fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn ms_to_us(ms: f64) -> u64 {
    if ms.is_finite() && ms > 0.0 {
        (ms * 1000.0).round() as u64
    } else {
        0
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            id: u64,
            scheduled_ms: f64,
            sent_ms: f64,
            send_lag_ms: f64,
            ttft_ms: Option<f64>,
            tpot_ms: Option<f64>,
            e2e_ms: f64,
            itl_ms: Itl<'a>,
            input_tokens: Option<u64>,
            output_tokens: u64,
            token_events: u64,
            usage_reported: bool,
            max_tokens: Option<u32>,
            status: Option<u16>,
            kind: Kind,
            error: Option<&'a str>,
        }
        struct Itl<'a>(&'a [u32]);
        impl Serialize for Itl<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(|&g| us_to_ms(u64::from(g))))
            }
        }
        Out {
            id: self.id,
            scheduled_ms: us_to_ms(self.scheduled_us),
            sent_ms: us_to_ms(self.sent_us),
            send_lag_ms: us_to_ms(self.send_lag_us()),
            ttft_ms: self.ttft_us.map(us_to_ms),
            tpot_ms: self.tpot_us().map(|t| (t.round()) / 1000.0),
            e2e_ms: us_to_ms(self.e2e_us),
            itl_ms: Itl(&self.itl_us),
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            token_events: self.token_events,
            usage_reported: self.usage_reported,
            max_tokens: self.max_tokens,
            status: self.status,
            kind: self.kind,
            error: self.error.as_deref(),
        }
        .serialize(s)
    }
}

mod ms {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        Ok(ms_to_us(f64::deserialize(d)?))
    }
}

mod opt_ms {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.map(ms_to_us))
    }
}

mod ms_list {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Box<[u32]>, D::Error> {
        let v = Vec::<f64>::deserialize(d)?;
        Ok(v.into_iter()
            .map(|ms| u32::try_from(ms_to_us(ms)).unwrap_or(u32::MAX))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn sample() -> Record {
        Record {
            id: 3,
            scheduled_us: 1000,
            sent_us: 1250,
            ttft_us: Some(100_123),
            e2e_us: 160_000,
            itl_us: vec![20_000, 20_500, 19_500].into(),
            input_tokens: Some(12),
            output_tokens: 4,
            token_events: 4,
            usage_reported: true,
            max_tokens: Some(4),
            status: Some(200),
            kind: Kind::Ok,
            error: None,
            digest: 0,
        }
    }

    #[test]
    fn tpot_and_lag() {
        let r = sample();
        assert_eq!(r.tpot_us(), Some(20_000.0));
        assert_eq!(r.send_lag_us(), 250);
        assert_eq!(r.end_us(), 161_250);
        let mut one = sample();
        one.output_tokens = 1;
        assert_eq!(one.tpot_us(), None);
        let mut bundled = sample();
        // Usage says 9 tokens in 4 events: the span is divided by 8.
        bundled.output_tokens = 9;
        assert_eq!(bundled.tpot_us(), Some(7_500.0));
        let mut none = sample();
        none.ttft_us = None;
        assert_eq!(none.tpot_us(), None);
    }

    #[test]
    fn json_round_trip_in_milliseconds() {
        let r = sample();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["ttft_ms"], 100.123);
        assert_eq!(v["tpot_ms"], 20.0);
        assert_eq!(v["send_lag_ms"], 0.25);
        assert_eq!(v["itl_ms"][1], 20.5);
        assert_eq!(v["kind"], "ok");
        let back: Record = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        assert_eq!(Kind::Http5xx.as_str(), "http_5xx");
        assert_eq!(
            serde_json::to_value(Kind::StreamError).unwrap(),
            "stream_error"
        );
        assert_eq!(serde_json::to_value(Kind::Http4xx).unwrap(), "http_4xx");
    }
}
