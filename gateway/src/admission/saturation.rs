//! When a variant counts as saturated: the one question priority queueing asks of the
//! scheduler, kept in one function so that a richer signal can replace it.
//!
//! Some endpoint of the variant takes traffic (not excluded, not ejected), and every such
//! endpoint is either at the backend's `max_in_flight_per_endpoint`, or, on a backend whose
//! balancer reads engine state, has a fresh reading at or past the balancer's `queue_threshold`
//! or `kv_threshold` while this gateway has requests in flight on it (so that a place is
//! handed over when one of them ends). A backend with neither is never saturated (its
//! requests are never queued).

use tokio::time::Instant;

use crate::backend::BackendRt;

/// Whether every usable endpoint among `members` (positions in `exclude` left out) is full (at
/// its in-flight limit, or past the engine-state thresholds as above), with at least one
/// usable endpoint.
pub fn saturated(backend: &BackendRt, members: &[usize], exclude: &[usize], now: Instant) -> bool {
    let limit = backend.max_in_flight;
    let engine = backend.scheduler.as_deref().filter(|s| s.scrape.is_some());
    if limit.is_none() && engine.is_none() {
        return false;
    }
    let mut usable = members
        .iter()
        .enumerate()
        .filter(|(pos, _)| !exclude.contains(pos))
        .filter_map(|(_, &i)| backend.endpoints.get(i))
        .filter(|e| !e.state.is_ejected(now))
        .peekable();
    usable.peek().is_some()
        && usable.all(|e| {
            let in_flight = e.state.in_flight();
            let at_limit = limit.is_some_and(|l| in_flight >= l);
            let engine_full = engine.is_some_and(|s| {
                in_flight > 0
                    && e.state
                        .engine
                        .fresh(now, s.stale_after)
                        .is_some_and(|r| r.queue >= s.queue_threshold || r.kv >= s.kv_threshold)
            });
            at_limit || engine_full
        })
}
