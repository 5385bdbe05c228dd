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

use http::{HeaderMap, Response};
use tokio::time::Instant;

use crate::body::GatewayBody;
use crate::error::echo;
use crate::route::{cookie, ModelRoute, Source};

pub use estimate::{max_tokens, Estimate};
pub use limiter::{Charge, Exceeded, Limits, Tenants};
pub use metrics::Counters;
pub use queue::{Bounds, Picked, Picker, Queue, Shed};
pub use reply::{go_duration, RateHeaders, Window};
pub use saturation::saturated;
pub use ticket::Ticket;

/// The compiled `admission` section, with its state.
pub struct Admission {
    /// What it was compiled from: the section and the request labels it may name.
    built_from: (
        infergate_config::Admission,
        std::collections::BTreeMap<String, infergate_config::LabelSource>,
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
    /// Compiles `cfg.admission` (already validated), keeping the state of `previous` that still
    /// applies: every backend's queue, the tenants' buckets while the key's source is the same,
    /// and the counters while the class names are the same.
    pub fn compile(
        cfg: &infergate_config::Config,
        previous: Option<&Arc<Admission>>,
    ) -> Arc<Admission> {
        let built_from = (cfg.admission.clone(), cfg.request_labels.clone());
        if let Some(p) = previous.filter(|p| p.built_from == built_from) {
            return p.clone();
        }
        let source = |header: &Option<String>, label: &Option<String>| -> Source {
            let from_label = label.as_ref().and_then(|l| cfg.request_labels.get(l));
            let found = match from_label {
                Some(s) => crate::compile::key_source(&s.header, &s.cookie),
                None => crate::compile::key_source(header, &None),
            };
            // Validation guarantees a source; an empty cookie name never matches.
            found.unwrap_or_else(|| Source::Cookie("".into()))
        };
        let priority = cfg.admission.priority.as_ref().map(|p| {
            let sum: u64 = p.classes.iter().map(|c| u64::from(c.queue)).sum();
            let max_queued = p.max_queued.map_or(sum, u64::from);
            let classes: Vec<(Box<str>, Bounds)> = p
                .classes
                .iter()
                .map(|c| {
                    let bounds = Bounds {
                        queue: c.queue as usize,
                        max_queued: usize::try_from(max_queued).unwrap_or(usize::MAX),
                        max_wait: c.max_wait.get(),
                    };
                    (c.name.as_str().into(), bounds)
                })
                .collect();
            let old = previous.and_then(|a| a.priority.as_ref());
            let queues = cfg
                .backends
                .iter()
                .map(|b| {
                    let q = old
                        .and_then(|o| o.queues.get(b.name.as_str()).cloned())
                        .unwrap_or_default();
                    q.grow(classes.len());
                    (Box::<str>::from(b.name.as_str()), q)
                })
                .collect();
            Priorities {
                source: source(&p.header, &p.label),
                default: p
                    .classes
                    .iter()
                    .position(|c| c.name == p.default)
                    .unwrap_or(0),
                classes,
                queues,
            }
        });
        let limiter = cfg.admission.rate_limits.as_ref().map(|r| {
            let source = source(&r.key.header, &r.key.label);
            let same_key = previous
                .and_then(|a| a.built_from.0.rate_limits.as_ref())
                .is_some_and(|o| o.key == r.key && o.max_tenants == r.max_tenants);
            let state = match previous.and_then(|a| a.limiter.as_ref()) {
                Some(l) if same_key => l.state.clone(),
                _ => Arc::new(Tenants::new(r.max_tenants)),
            };
            Limiter {
                source,
                default: Limits::new(&r.default, r.replicas),
                tenants: r
                    .tenants
                    .iter()
                    .map(|(k, l)| (k.as_str().into(), Limits::new(l, r.replicas)))
                    .collect(),
                default_output: u64::from(r.default_max_tokens),
                state,
            }
        });
        let names: Vec<Box<str>> = priority
            .as_ref()
            .map(|p| p.classes.iter().map(|(n, _)| n.clone()).collect())
            .unwrap_or_default();
        let counters = match previous {
            Some(p) if p.counters.classes() == names.as_slice() => p.counters.clone(),
            _ => Arc::new(Counters::new(names)),
        };
        Arc::new(Admission {
            built_from,
            priority,
            limiter,
            counters,
        })
    }

    /// Takes the request's estimate from its tenant's buckets, or answers 429.
    #[allow(clippy::result_large_err)]
    pub fn rate_limit(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Admitted, Response<GatewayBody>> {
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
                    echo(tenant),
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
    ) -> Result<Option<Picked>, Response<GatewayBody>> {
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

fn shed_reply(shed: Shed, class: &str, backend: &str, max_wait: Duration) -> Response<GatewayBody> {
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
