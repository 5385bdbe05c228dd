//! A backend as the data path uses it: its endpoints with their shared state, timeouts, retry
//! and outlier policies, and the pooled client.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use tokio::time::Instant;

use crate::endpoint::{EjectReason, EndpointState, Failure, OutlierPolicy};
use crate::metrics::EndpointMetrics;
use crate::pick_policy::Scheduler;

/// The pooled HTTP client used to reach model servers (`http://` and `https://`).
pub type UpstreamClient = Client<crate::tls::UpstreamConnector, Full<Bytes>>;

/// Upstream timeouts of a backend.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_token: Duration,
    pub idle: Duration,
    pub total: Duration,
}

/// When to try another endpoint.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub on_status: Vec<u16>,
}

impl RetryPolicy {
    pub fn retries_status(&self, status: http::StatusCode) -> bool {
        self.on_status.contains(&status.as_u16())
    }
}

/// A backend as the data path uses it.
pub struct BackendRt {
    pub name: Box<str>,
    /// Its endpoints come from discovery (`"kubernetes"`), not from the config file.
    pub discovered: bool,
    pub endpoints: Vec<EndpointRt>,
    pub timeouts: Timeouts,
    pub max_in_flight: Option<u32>,
    pub retry: RetryPolicy,
    pub outlier: OutlierPolicy,
    pub client: UpstreamClient,
    /// Endpoint choice from `balancer`; `None`: power of two choices on in-flight requests.
    pub scheduler: Option<Box<Scheduler>>,
}

/// One upstream endpoint: its address split for building request URIs, its shared state and
/// its connection pool.
pub struct EndpointRt {
    pub state: Arc<EndpointState>,
    pub scheme: Scheme,
    pub authority: Authority,
    /// The `Host` header of its requests: the host, and the port unless the scheme's default.
    pub host: http::HeaderValue,
    /// The data path's connections to it, shared by the snapshots that have it.
    pub pool: Arc<crate::pool::EndpointPool>,
    /// Path prefix without a trailing slash; empty for none.
    pub prefix: Box<str>,
    pub labels: infergate_config::Labels,
    pub metrics: EndpointMetrics,
}

impl BackendRt {
    /// Records a failed attempt on endpoint `i`; ejects it when its failure streak reached the
    /// threshold and the backend's ejection cap allows. Returns the ejection's end.
    pub fn on_failure(&self, i: usize, failure: Failure, now: Instant) -> Option<Instant> {
        let ep = self.endpoints.get(i)?;
        ep.metrics.failure(failure);
        if !ep.state.record_failure(&self.outlier) {
            return None;
        }
        let n = self.endpoints.len();
        let cap = (n * self.outlier.max_ejected_percent as usize / 100).min(n - 1);
        let ejected = self
            .endpoints
            .iter()
            .filter(|e| e.state.outlier_ejected(now))
            .count();
        if ejected >= cap {
            return None;
        }
        let until = ep
            .state
            .eject(EjectReason::ConsecutiveFailures, &self.outlier, now)?;
        ep.metrics.ejected();
        tracing::warn!(
            backend = %self.name,
            endpoint = %ep.state.url,
            reason = EjectReason::ConsecutiveFailures.as_str(),
            seconds = (until - now).as_secs_f64(),
            "endpoint ejected"
        );
        Some(until)
    }
}
