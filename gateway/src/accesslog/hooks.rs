//! What an upstream exchange carries for the access log, the trace and the overhead histogram.

use std::time::Duration;

use http::StatusCode;
use tokio::time::Instant;

use super::Observation;

/// Held by an exchange (`body::Exchange`); moved to the next exchange on a retry.
#[derive(Default)]
pub struct ExchangeHooks {
    /// The request's record, when access logs or traces are on.
    pub obs: Option<Box<Observation>>,
    /// Request body bytes sent upstream (the body read from the client).
    pub bytes_in: u64,
    /// Response body bytes passed to the client.
    pub bytes_out: u64,
    /// The response status passed to the client.
    pub status: Option<StatusCode>,
    /// When the gateway could start on this attempt: the request body whole, or the previous
    /// attempt failed.
    since: Option<Instant>,
    /// From `since` to the upstream request handed to the connection.
    before: Option<Duration>,
    /// When the upstream's first body frame (or, without one, its response head) arrived.
    upstream_first: Option<Instant>,
    measured: bool,
}

impl ExchangeHooks {
    /// An attempt starts: the gateway has worked for it since `ready`; `obs` is the request's
    /// record, when there is one.
    pub fn start(&mut self, ready: Instant, obs: Option<Box<Observation>>) {
        self.since = Some(ready);
        self.obs = obs;
    }

    /// The upstream request is handed to the connection (pool) now.
    pub fn dispatched(&mut self, now: Instant) {
        if let Some(s) = self.since {
            self.before = Some(now.saturating_duration_since(s));
        }
    }

    /// The upstream's first byte of the response arrived.
    pub fn upstream_first(&mut self, at: Instant) {
        self.upstream_first = Some(at);
    }

    /// The first frame goes to the client now: the gateway's overhead, once per exchange, in
    /// seconds (`None` when a part was not measured).
    pub fn client_first(&mut self, now: Instant) -> Option<f64> {
        if self.measured {
            return None;
        }
        self.measured = true;
        let before = self.before?;
        let after = now.saturating_duration_since(self.upstream_first?);
        Some((before + after).as_secs_f64())
    }
}
