//! Access logs: one JSON line per request, written by a thread of its own from a bounded
//! queue, so that the request path never waits on a disk or a pipe: a line that finds the queue
//! full is dropped and counted (`infergate_access_log_dropped_total`). Off by default; the
//! fields are listed in docs/observability.md.
//!
//! [`Observers`] holds the access log and the tracer, and [`Observation`] is one request's
//! record for both, carried from the request's head to its end.

mod hooks;
mod observation;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{HeaderMap, HeaderValue};
use http::{Method, Request, StatusCode};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use hooks::ExchangeHooks;
pub use observation::{Finished, Observation};
pub use writer::AccessLog;

use crate::metrics::Metrics;
use crate::trace::{TraceCounters, Tracer};

/// The client's address, put in a request's extensions by the listener. Without it the
/// access log's `client` field is `null`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// What [`Observers::start`] gives: the observers (none when both are off) and the tasks it
/// started.
pub type Started = (Option<Arc<Observers>>, Vec<JoinHandle<()>>);

/// The access log and the tracer, as configured at start. `None` of both: nothing is built per
/// request.
pub struct Observers {
    pub log: Option<AccessLog>,
    pub tracer: Option<Tracer>,
}

impl Observers {
    /// Opens the access log and starts the trace exporter as the config asks; `Ok(None)` when
    /// both are off.
    pub fn start(cfg: &infergate_config::Config, metrics: &Metrics) -> Result<Started, String> {
        let m = metrics.observability();
        let log = if cfg.access_log.enabled {
            Some(AccessLog::open(
                &cfg.access_log,
                m.access_log_dropped.clone(),
            )?)
        } else {
            None
        };
        let mut tasks = Vec::new();
        let tracer = match &cfg.tracing {
            Some(t) => {
                let counters = TraceCounters {
                    dropped_queue: m.spans_dropped_queue.clone(),
                    dropped_export: m.spans_dropped_export.clone(),
                    exported: m.spans_exported.clone(),
                };
                let (tracer, task) = Tracer::start(t, counters)?;
                tasks.push(task);
                Some(tracer)
            }
            None => None,
        };
        if log.is_none() && tracer.is_none() {
            return Ok((None, tasks));
        }
        Ok((Some(Arc::new(Observers { log, tracer })), tasks))
    }

    /// The record of a request whose head arrived at `start`.
    pub fn begin(
        self: &Arc<Self>,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        client: Option<SocketAddr>,
        request_id: &HeaderValue,
        start: Instant,
    ) -> Box<Observation> {
        let trace = self.tracer.as_ref().map(|t| t.begin(headers));
        Box::new(Observation::new(
            self.clone(),
            method,
            path,
            client,
            request_id,
            start,
            trace,
        ))
    }
}

/// The record of a request, when access logs or traces are on (else `None`, and nothing is
/// built).
pub fn begin<B>(
    observers: Option<&Arc<Observers>>,
    req: &Request<B>,
    request_id: &HeaderValue,
    start: Instant,
) -> Option<Box<Observation>> {
    let o = observers?;
    let client = req.extensions().get::<ClientAddr>().map(|c| c.0);
    Some(o.begin(
        req.method(),
        req.uri().path(),
        req.headers(),
        client,
        request_id,
        start,
    ))
}

/// Ends the record of a request the gateway answered itself: `GET /v1/models`, a rate limit's
/// 429, a shed request's 503.
pub fn finish_local(obs: Option<Box<Observation>>, status: StatusCode) {
    if let Some(o) = obs {
        o.finish(Finished {
            status: status.as_u16(),
            outcome: match status {
                s if s.is_success() => "success",
                StatusCode::TOO_MANY_REQUESTS => "rate_limited",
                StatusCode::SERVICE_UNAVAILABLE => "overloaded",
                _ => "error",
            },
            success: status.is_success(),
            ..Finished::default()
        });
    }
}

/// Ends the record of a request that failed with a gateway error: its status, metric outcome
/// and message.
pub fn finish_error(
    obs: Option<Box<Observation>>,
    status: StatusCode,
    outcome: &'static str,
    message: &dyn std::fmt::Display,
) {
    if let Some(o) = obs {
        o.finish(Finished {
            status: status.as_u16(),
            outcome,
            success: false,
            error: Some(message.to_string()),
            ..Finished::default()
        });
    }
}
