//! When a variant counts as saturated: the one question priority queueing asks of the
//! scheduler, kept in one function so that a richer signal can replace it.
//!
//! Today: some endpoint of the variant takes traffic (not excluded, not ejected) and every such
//! endpoint is at the backend's `max_in_flight_per_endpoint`. A backend without that limit is
//! never saturated (its requests are never queued). When the engine state scraped from the
//! endpoints (queue depth past the balancer's threshold) can be asked, it belongs here too.

use tokio::time::Instant;

use crate::backend::BackendRt;

/// Whether every usable endpoint among `members` (positions in `exclude` left out) is at its
/// in-flight limit, with at least one usable endpoint.
pub fn saturated(backend: &BackendRt, members: &[usize], exclude: &[usize], now: Instant) -> bool {
    let Some(limit) = backend.max_in_flight else {
        return false;
    };
    let mut usable = members
        .iter()
        .enumerate()
        .filter(|(pos, _)| !exclude.contains(pos))
        .filter_map(|(_, &i)| backend.endpoints.get(i))
        .filter(|e| !e.state.is_ejected(now))
        .peekable();
    usable.peek().is_some() && usable.all(|e| e.state.in_flight() >= limit)
}
