//! `model_aware`: the lowest weighted score over the engine's queue, its KV-cache use and the
//! gateway's in-flight requests, among a sample of `candidates` endpoints.
//!
//! - score = `weights.queue` × waiting + `weights.kv` × KV use × 10 + `weights.in_flight` ×
//!   in-flight;
//! - a candidate at or past `queue_threshold` or `kv_threshold` is chosen only when every
//!   candidate is;
//! - when any candidate's engine state is older than `stale_after`, the candidates are ordered
//!   by in-flight alone (stale and fresh numbers do not mix).

use tokio::time::Instant;

use super::{sample, Choice};
use crate::backend::BackendRt;
use crate::endpoint::EngineSample;
use crate::pick_policy::{Reason, Scheduler};

/// One scored candidate.
struct Scored {
    pos: usize,
    over: bool,
    score: f64,
    sample: Option<EngineSample>,
}

impl BackendRt {
    pub(super) fn model_aware(
        &self,
        s: &Scheduler,
        members: &[usize],
        exclude: &[usize],
        now: Instant,
    ) -> Option<Choice> {
        let mut stale = false;
        let mut scored: Vec<Scored> = sample(members.len(), s.candidates)
            .into_iter()
            .filter(|&i| self.usable(members, exclude, i, now))
            .map(|i| {
                let st = &self.endpoints[members[i]].state;
                let in_flight = f64::from(st.in_flight());
                let fresh = st.engine.fresh(now, s.stale_after);
                stale |= fresh.is_none();
                match fresh {
                    Some(e) => Scored {
                        pos: i,
                        over: e.queue >= s.queue_threshold || e.kv >= s.kv_threshold,
                        score: s.w_queue * f64::from(e.queue)
                            + s.w_kv * e.kv * 10.0
                            + s.w_in_flight * in_flight,
                        sample: Some(e),
                    },
                    None => Scored {
                        pos: i,
                        over: false,
                        score: in_flight,
                        sample: None,
                    },
                }
            })
            .collect();
        if stale {
            for c in &mut scored {
                c.over = false;
                c.score = f64::from(self.endpoints[members[c.pos]].state.in_flight());
            }
        }
        let order = |a: &Scored, b: &Scored| a.over.cmp(&b.over).then(a.score.total_cmp(&b.score));
        // The best first (the first of equals: ties keep the sample's random order); the rest
        // are sorted only when it cannot take the request.
        let best = (0..scored.len()).min_by(|&a, &b| order(&scored[a], &scored[b]))?;
        let first = scored.swap_remove(best);
        let rest = std::iter::once_with(move || {
            scored.sort_by(order);
            scored
        });
        std::iter::once(first).chain(rest.flatten()).find_map(|c| {
            let guard = self.take(members, c.pos)?;
            let reason = match c.sample {
                _ if stale => Reason::Stale {
                    in_flight: guard.endpoint().in_flight().saturating_sub(1),
                },
                Some(e) if c.over => Reason::Saturated {
                    score: c.score,
                    queue: e.queue,
                    kv: e.kv,
                },
                Some(e) => Reason::ModelAware {
                    score: c.score,
                    queue: e.queue,
                    kv: e.kv,
                },
                None => Reason::Stale { in_flight: 0 },
            };
            Some(Choice {
                pos: c.pos,
                guard,
                reason,
            })
        })
    }
}
