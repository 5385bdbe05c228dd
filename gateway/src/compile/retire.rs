//! Removes the metric series of what left the table, so that `/metrics` carries only what
//! exists. Only rebuilt models and backends are compared: a kept one has the same series.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::backend::BackendRt;
use crate::metrics::Metrics;
use crate::route::ModelRoute;

type Models = HashMap<Box<str>, Arc<ModelRoute>>;
type Backends = HashMap<Box<str>, Arc<BackendRt>>;

/// Compares the old and new entries (`(old, new)` models, then backends) and removes the
/// series that only the old ones had.
pub fn retire(
    metrics: &Metrics,
    (old_models, new_models): (Models, Models),
    (old_backends, new_backends): (Backends, Backends),
) {
    let changed =
        |k: &str, route: &Arc<ModelRoute>| new_models.get(k).is_none_or(|r| !Arc::ptr_eq(r, route));
    let mut variants_now = HashSet::new();
    let mut members_now = HashSet::new();
    for (k, route) in &new_models {
        let was = old_models.get(k);
        if was.is_some_and(|r| Arc::ptr_eq(r, route)) {
            continue;
        }
        keys(route, &mut variants_now, &mut members_now);
    }
    for (k, route) in &old_models {
        if !changed(k, route) {
            continue;
        }
        let mut variants = HashSet::new();
        let mut members = HashSet::new();
        keys(route, &mut variants, &mut members);
        for [m, b, v] in variants.difference(&variants_now) {
            metrics.retire_variant(m, b, v);
        }
        for [m, b, v, e] in members.difference(&members_now) {
            metrics.retire_member(m, b, v, e);
        }
    }

    let mut endpoints_now = HashSet::new();
    for (k, b) in &new_backends {
        if old_backends.get(k).is_some_and(|o| Arc::ptr_eq(o, b)) {
            continue;
        }
        endpoints_now.extend(b.endpoints.iter().map(|e| (k.clone(), e.state.url.clone())));
    }
    for (k, b) in &old_backends {
        if new_backends.get(k).is_some_and(|n| Arc::ptr_eq(n, b)) {
            continue;
        }
        for e in &b.endpoints {
            if !endpoints_now.contains(&(k.clone(), e.state.url.clone())) {
                metrics.retire_endpoint(k, &e.state.url);
            }
        }
    }
}

/// The (model, backend, variant) and (model, backend, variant, endpoint) label sets of a route.
fn keys(
    route: &ModelRoute,
    variants: &mut HashSet<[String; 3]>,
    members: &mut HashSet<[String; 4]>,
) {
    for v in &route.variants {
        for m in v
            .metrics
            .iter()
            .chain(&v.shadow_metrics)
            .chain([&v.unrouted])
        {
            let labels = m.variant().labels().map(str::to_owned);
            let [a, b, c] = labels.clone();
            members.insert([a, b, c, m.endpoint().to_owned()]);
            variants.insert(labels);
        }
    }
}
