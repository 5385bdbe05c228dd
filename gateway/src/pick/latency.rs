//! `least_latency`: power of two choices on peak-EWMA latency × (in-flight + 1).

use tokio::time::Instant;

use super::{sample, Choice};
use crate::backend::BackendRt;
use crate::pick_policy::Reason;

impl BackendRt {
    /// Two usable endpoints at random, the lower load wins. `None` when fewer than two random
    /// draws are usable or neither can take the request (the caller falls back to p2c).
    pub(super) fn least_latency(
        &self,
        members: &[usize],
        exclude: &[usize],
        now: Instant,
    ) -> Option<Choice> {
        let drawn: Vec<usize> = sample(members.len(), 2)
            .into_iter()
            .filter(|&i| self.usable(members, exclude, i, now))
            .collect();
        let load = |i: usize| {
            let s = &self.endpoints[members[i]].state;
            s.peak.load(now, s.in_flight())
        };
        let mut order: Vec<(f64, usize)> = drawn.iter().map(|&i| (load(i), i)).collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0));
        order.into_iter().find_map(|(_, i)| {
            let guard = self.take(members, i)?;
            let s = guard.endpoint();
            let reason = Reason::LeastLatency {
                cost_ms: s.peak.get(now).map_or(0.0, |d| d.as_secs_f64() * 1000.0),
                in_flight: s.in_flight().saturating_sub(1),
            };
            Some(Choice {
                pos: i,
                guard,
                reason,
            })
        })
    }
}
