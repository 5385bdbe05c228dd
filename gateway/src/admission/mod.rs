//! Admission: priority classes with bounded queues, and token rate limits per tenant
//! (`admission` in the config; docs/admission.md).
//!
//! On the request path, after the route and variant are decided:
//! 1. [`Admission::rate_limit`] takes the request's estimate ([`Estimate`]) from its tenant's
//!    buckets, or answers 429 with OpenAI's body and `x-ratelimit-*` headers. The [`Charge`]
//!    rides in the request's [`Ticket`] and is settled on the real `usage` when the response
//!    ends ([`Ticket::finish`], called by the exchange).
//! 2. When no endpoint can take the request and the variant is [`saturated`],
//!    [`Admission::wait`] queues it in its class's [`Queue`] (one per backend) until a place
//!    frees (every exchange on the backend wakes the queue as it releases its endpoint:
//!    [`Ticket::released`]), its class's `max_wait` passes, or a higher class sheds it; a
//!    shed request is answered 429 with `Retry-After`.
//!
//! The compiled settings live in the snapshot; the state (queues, tenants' buckets, counters)
//! is carried from one snapshot to the next while the settings it depends on stay the same.

mod bucket;
mod charge;
mod compile;
mod estimate;
mod limiter;
mod metrics;
mod queue;
mod reply;
mod saturation;
mod ticket;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Response};
use tokio::time::Instant;

use crate::route::{cookie, ModelRoute, Source};

pub use charge::Charge;
pub use estimate::{max_tokens, Estimate};
pub use limiter::{Exceeded, Limits, Tenants};
pub use metrics::Counters;
pub use queue::{Bounds, Picked, Picker, Queue, Shed};
pub use reply::{go_duration, RateHeaders, Window};
pub use saturation::saturated;
pub use ticket::Ticket;

/// The compiled `admission` section, with its state.
pub struct Admission {
    /// What it was compiled from: the section, the request labels it may name, and the
    /// backends that have a queue.
    built_from: (
        infergate_config::Admission,
        std::collections::BTreeMap<String, infergate_config::LabelSource>,
        Vec<Box<str>>,
    ),
    priority: Option<Priorities>,
    limiter: Option<Limiter>,
    counters: Arc<Counters>,
}

struct Priorities {
    source: Source,
    /// Name and bounds, highest first.
    classes: Vec<(Box<str>, Bounds)>,
    default: usize,
    queues: HashMap<Box<str>, Arc<Queue>>,
}

struct Limiter {
    source: Source,
    default: Limits,
    tenants: HashMap<Box<str>, Limits>,
    default_output: u64,
    state: Arc<Tenants>,
}

/// What rate limiting gave a request it let through.
#[derive(Default)]
pub struct Admitted {
    pub charge: Option<Charge>,
    pub headers: RateHeaders,
}

impl Admission {
    /// Takes the request's estimate from its tenant's buckets, or answers 429.
    #[allow(clippy::result_large_err)]
    pub fn rate_limit(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Admitted, Response<Bytes>> {
        let Some(l) = &self.limiter else {
            return Ok(Admitted::default());
        };
        let tenant = limiter::bounded_key(value(headers, &l.source).unwrap_or(""));
        let limits = l.tenants.get(tenant).copied().unwrap_or(l.default);
        let estimate = Estimate::of(body, l.default_output);
        match l.state.admit(tenant, limits, estimate, Instant::now()) {
            Ok((charge, headers)) => Ok(Admitted { charge, headers }),
            Err(r) => {
                self.counters.rate_limited(r.exceeded);
                let (what, short) = match r.exceeded {
                    Exceeded::Requests => ("requests per min", "RPM"),
                    Exceeded::Tokens => ("tokens per min", "TPM"),
                };
                let message = format!(
                    "Rate limit reached for tenant `{}` on {what} ({short}): Limit {}, Requested {}. Please try again in {}.",
                    tenant,
                    r.limit,
                    r.requested,
                    go_duration(r.retry_after),
                );
                let mut resp = reply::too_many(
                    "rate_limit_exceeded",
                    r.exceeded.as_str(),
                    &message,
                    r.retry_after,
                );
                r.headers.apply(resp.headers_mut());
                Err(resp)
            }
        }
    }

    /// The queue that exchanges on `backend` wake when they release their endpoint; `None`
    /// without priority classes.
    pub fn queue(&self, backend: &str) -> Option<&Arc<Queue>> {
        self.priority.as_ref()?.queues.get(backend)
    }

    /// For a request that found no free endpoint: when its variant is [`saturated`] and
    /// priority classes are configured, waits in its class's queue of `backend` for a place
    /// (`Ok(Some)`) or answers 429 (`Err`). `Ok(None)`: not a case for queueing.
    #[allow(clippy::result_large_err, clippy::too_many_arguments)]
    pub async fn wait(
        &self,
        headers: &HeaderMap,
        route: &Arc<ModelRoute>,
        variant: usize,
        exclude: &[usize],
        deadline: Instant,
    ) -> Result<Option<Picked>, Response<Bytes>> {
        let Some(p) = &self.priority else {
            return Ok(None);
        };
        let v = &route.variants[variant];
        let Some(queue) = p.queues.get(v.backend.name.as_ref()) else {
            return Ok(None);
        };
        if !saturated(&v.backend, &v.members, exclude, Instant::now()) {
            return Ok(None);
        }
        let class = value(headers, &p.source)
            .and_then(|name| p.classes.iter().position(|(n, _)| n.as_ref() == name))
            .unwrap_or(p.default);
        let Some((name, bounds)) = p.classes.get(class) else {
            return Ok(None);
        };
        self.counters.queued(class);
        let pick = picker(route.clone(), variant, exclude.to_vec());
        match queue.wait(class, *bounds, pick, deadline).await {
            Ok(place) => Ok(Some(place)),
            Err(shed) => {
                self.counters.shed(class, shed);
                Err(shed_reply(shed, name, &v.backend.name, bounds.max_wait))
            }
        }
    }

    /// Appends admission's series to the metrics page.
    pub fn render(&self, out: &mut Vec<u8>) {
        let mut depth = vec![0usize; self.counters.classes().len()];
        if let Some(p) = &self.priority {
            for q in p.queues.values() {
                for (i, d) in q.depth().into_iter().enumerate() {
                    if let Some(slot) = depth.get_mut(i) {
                        *slot += d;
                    }
                }
            }
        }
        self.counters
            .render(&depth, self.priority.is_some(), self.limiter.is_some(), out);
    }
}

/// A waiter's endpoint choice: power of two choices among its variant's endpoints, without
/// the positions in `exclude`.
pub fn picker(route: Arc<ModelRoute>, variant: usize, exclude: Vec<usize>) -> Picker {
    Box::new(move |now| {
        let v = route.variants.get(variant)?;
        v.backend.pick(&v.members, &exclude, now)
    })
}

fn shed_reply(shed: Shed, class: &str, backend: &str, max_wait: Duration) -> Response<Bytes> {
    let (code, why) = match shed {
        Shed::QueueFull => ("queue_full", format!("the queue of priority class `{class}` is full")),
        Shed::Displaced => (
            "queue_displaced",
            format!("a request of a higher priority class took this request's place in the queue of class `{class}`"),
        ),
        Shed::Timeout => (
            "queue_timeout",
            format!("no endpoint freed within the {} that class `{class}` may wait", infergate_config::Dur(max_wait)),
        ),
    };
    let message = format!("every endpoint of backend `{backend}` is busy and {why}; retry shortly");
    reply::too_many(
        code,
        infergate_wire::openai::SERVER_ERROR,
        &message,
        Duration::from_secs(1),
    )
}

/// The value of a header or cookie of the request.
fn value<'h>(headers: &'h HeaderMap, src: &Source) -> Option<&'h str> {
    match src {
        Source::Header(h) => headers.get(h).and_then(|v| v.to_str().ok()),
        Source::Cookie(name) => cookie(headers, name),
        Source::Label(_) => None,
    }
}

#[cfg(test)]
mod tests;
