//! Endpoint choice. A backend without `balancer` uses power of two choices on in-flight
//! requests ([`BackendRt::pick`], in `p2c`). A backend with one has a
//! [`Scheduler`](crate::pick_policy::Scheduler): prefix affinity first when the request has a
//! prefix hash, then its policy; each falls back to power of two choices when its candidates
//! cannot take the request. Every path costs the same whatever the number of endpoints: the
//! policies look at a fixed number of candidates, and affinity walks a sorted ring.
//!
//! `members` are the endpoint indices to choose from (a variant's endpoints, ascending);
//! `exclude` and the returned position are positions in `members`.

mod affinity;
mod latency;
mod model_aware;
mod p2c;
mod round_robin;

use infergate_config::Policy;
use rand::Rng;
use tokio::time::Instant;

use crate::backend::BackendRt;
use crate::endpoint::InFlight;
use crate::pick_policy::Reason;

/// Says why the endpoint was chosen (opt-in: `balancer.reason_header`).
pub static X_INFERGATE_ENDPOINT_REASON: http::HeaderName =
    http::HeaderName::from_static("x-infergate-endpoint-reason");

/// The chosen endpoint: its position in `members`, its in-flight guard, and why.
#[derive(Debug)]
pub struct Choice {
    pub pos: usize,
    pub guard: InFlight,
    pub reason: Reason,
}

impl BackendRt {
    /// Chooses an endpoint by the backend's scheduler; `prefix` is the request's prefix hash
    /// ([`crate::prefix::prefix_hash`]) when the scheduler has affinity. `None` when every
    /// endpoint not excluded is full.
    pub fn choose(
        &self,
        members: &[usize],
        exclude: &[usize],
        now: Instant,
        prefix: Option<u64>,
    ) -> Option<Choice> {
        let Some(s) = &self.scheduler else {
            return self.p2c_choice(members, exclude, now);
        };
        if let (Some(a), Some(h)) = (&s.affinity, prefix) {
            if let Some(c) = self.affine(a, members, exclude, now, h) {
                return Some(c);
            }
        }
        match s.policy {
            Policy::P2c => self.p2c_choice(members, exclude, now),
            Policy::RoundRobin => self
                .round_robin(s, members, exclude, now)
                .or_else(|| self.p2c_choice(members, exclude, now)),
            Policy::LeastLatency => self
                .least_latency(members, exclude, now)
                .or_else(|| self.p2c_choice(members, exclude, now)),
            Policy::ModelAware => self
                .model_aware(s, members, exclude, now)
                .or_else(|| self.p2c_choice(members, exclude, now)),
        }
    }

    /// The request's prefix hash, when the backend's scheduler has prefix affinity.
    pub fn prefix_of(&self, body: &[u8]) -> Option<u64> {
        let a = self.scheduler.as_ref()?.affinity.as_ref()?;
        crate::prefix::prefix_hash(body, a.block_bytes, a.blocks)
    }

    /// Adds `x-infergate-endpoint-reason` to a response when the backend's balancer asks for
    /// it (`reason_header: true`).
    pub fn reason_header(&self, reason: &Reason, headers: &mut http::HeaderMap) {
        if self.scheduler.as_ref().is_some_and(|s| s.reason_header) {
            if let Ok(v) = http::HeaderValue::from_str(&reason.to_string()) {
                headers.insert(X_INFERGATE_ENDPOINT_REASON.clone(), v);
            }
        }
    }

    /// [`Self::pick`] with its reason.
    fn p2c_choice(&self, members: &[usize], exclude: &[usize], now: Instant) -> Option<Choice> {
        let (pos, guard) = self.pick(members, exclude, now)?;
        let reason = if guard.endpoint().is_ejected(now) {
            Reason::LeastBad
        } else {
            Reason::P2c {
                in_flight: guard.endpoint().in_flight().saturating_sub(1),
            }
        };
        Some(Choice { pos, guard, reason })
    }

    /// Whether position `i` of `members` may be chosen now.
    fn usable(&self, members: &[usize], exclude: &[usize], i: usize, now: Instant) -> bool {
        !exclude.contains(&i) && !self.endpoints[members[i]].state.is_ejected(now)
    }

    /// Takes a place on position `i` of `members` under the backend's in-flight limit.
    fn take(&self, members: &[usize], i: usize) -> Option<InFlight> {
        self.endpoints[members[i]]
            .state
            .try_acquire(self.max_in_flight)
    }
}

/// Up to `k` distinct positions of `0..n`: all of them in a random rotation when `n <= k`, else
/// a random sample (a few tries more than `k` draws; duplicates are dropped).
fn sample(n: usize, k: usize) -> Vec<usize> {
    let mut rng = rand::rng();
    if n <= k {
        let start = rng.random_range(0..n.max(1));
        return (0..n).map(|i| (start + i) % n).collect();
    }
    let mut out = Vec::with_capacity(k);
    for _ in 0..k * 2 {
        let i = rng.random_range(0..n);
        if !out.contains(&i) {
            out.push(i);
            if out.len() == k {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
