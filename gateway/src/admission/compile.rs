//! Builds [`Admission`] from the config, carrying over the state that still applies.

use std::sync::Arc;

use super::{Admission, Bounds, Counters, Limiter, Limits, Priorities, Tenants};
use crate::route::Source;

impl Admission {
    /// Compiles `cfg.admission` (already validated), keeping the state of `previous` that still
    /// applies: every backend's queue, the tenants' buckets while the key's source is the same,
    /// and the counters while the class names are the same.
    pub fn compile(
        cfg: &infergate_config::Config,
        previous: Option<&Arc<Admission>>,
    ) -> Arc<Admission> {
        // With priority classes, each backend has a queue: a new backend needs a new build.
        let backends = match cfg.admission.priority {
            Some(_) => cfg
                .backends
                .iter()
                .map(|b| b.name.as_str().into())
                .collect(),
            None => Vec::new(),
        };
        let built_from = (cfg.admission.clone(), cfg.request_labels.clone(), backends);
        if let Some(p) = previous.filter(|p| p.built_from == built_from) {
            return p.clone();
        }
        let source = |header: &Option<String>, label: &Option<String>| -> Source {
            let (header, cookie) = match label.as_ref().and_then(|l| cfg.request_labels.get(l)) {
                Some(s) => (s.header.as_deref(), s.cookie.as_deref()),
                None => (header.as_deref(), None),
            };
            match (
                header.map(|h| http::HeaderName::from_bytes(h.as_bytes())),
                cookie,
            ) {
                (Some(Ok(h)), _) => Source::Header(h),
                (None, Some(c)) => Source::Cookie(c.into()),
                // Validation guarantees a source; an empty cookie name never matches.
                _ => Source::Cookie("".into()),
            }
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
}
