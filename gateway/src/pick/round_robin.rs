//! `round_robin`: the members in turn, from a counter per backend. An endpoint that does not
//! take traffic (ejected, excluded) or is full is passed over for the next in turn, as `p2c`
//! passes over them. Meant as a baseline: it reads neither load nor engine state.

use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::Choice;
use crate::backend::BackendRt;
use crate::pick_policy::{Reason, Scheduler};

impl BackendRt {
    /// The next member in turn that takes traffic and has room. `None` when none does (the
    /// caller falls back to p2c, which also handles every endpoint being ejected). The walk
    /// stops after one turn of the members, so its cost is bounded by their number only when
    /// most are unusable; in the common case the first one takes the request.
    pub(super) fn round_robin(
        &self,
        s: &Scheduler,
        members: &[usize],
        exclude: &[usize],
        now: Instant,
    ) -> Option<Choice> {
        let n = members.len();
        if n == 0 {
            return None;
        }
        let start = s.turn.fetch_add(1, Ordering::Relaxed) % n;
        (0..n).map(|k| (start + k) % n).find_map(|i| {
            if !self.usable(members, exclude, i, now) {
                return None;
            }
            let guard = self.take(members, i)?;
            let reason = Reason::RoundRobin {
                in_flight: guard.endpoint().in_flight().saturating_sub(1),
            };
            Some(Choice {
                pos: i,
                guard,
                reason,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use infergate_config::Config;
    use tokio::time::Instant;

    use crate::compile::Compiler;
    use crate::endpoint::EjectReason;
    use crate::metrics::Metrics;
    use crate::pick_policy::Reason;
    use crate::table::Table;

    fn table(n: usize, limits: &str) -> Table {
        let eps = (1..=n)
            .map(|i| format!("{{url: 'http://127.0.0.1:{i}'}}"))
            .collect::<Vec<_>>()
            .join(", ");
        let yaml = format!(
            "listeners: {{ data: {{ address: '127.0.0.1:0' }}, admin: {{ address: '127.0.0.1:0' }} }}\n\
             backends: [{{ name: b, endpoints: [{eps}], balancer: {{ policy: round_robin }} {limits} }}]\n\
             models: [{{ name: m, backend: b }}]\n"
        );
        let cfg = Config::from_yaml(&yaml).unwrap();
        Compiler::new(Arc::new(Metrics::new().unwrap()))
            .compile(&Arc::new(cfg))
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn round_robin_takes_the_members_in_turn_and_passes_over_unusable_ones() {
        let t = table(3, ", limits: { max_in_flight_per_endpoint: 2 }");
        let b = &t.route("m").unwrap().variants[0].backend;
        let all: Vec<usize> = (0..3).collect();
        let now = Instant::now();
        // In turn, whatever the load: each endpoint once per round.
        let busy = b.endpoints[0].state.acquire();
        let picks: Vec<usize> = (0..6)
            .map(|_| b.choose(&all, &[], now, None).unwrap().pos)
            .collect();
        for w in picks.windows(2) {
            assert_eq!(w[1], (w[0] + 1) % 3, "{picks:?}");
        }
        let c = b.choose(&all, &[], now, None).unwrap();
        let want = if c.pos == 0 { 1 } else { 0 };
        assert_eq!(c.reason, Reason::RoundRobin { in_flight: want });
        drop((c, busy));
        // An ejected endpoint and an excluded one are passed over.
        b.endpoints[1]
            .state
            .eject(EjectReason::ConsecutiveFailures, &b.outlier, now)
            .unwrap();
        for _ in 0..6 {
            assert_eq!(b.choose(&all, &[2], now, None).unwrap().pos, 0);
        }
        // A full endpoint too: endpoint 0 holds its 2 places, endpoint 2 takes the next 2,
        // then none can take one.
        let held: Vec<_> = (0..4)
            .map(|_| b.choose(&all, &[], now, None).unwrap())
            .collect();
        let on = |p: usize| held.iter().filter(|c| c.pos == p).count();
        assert_eq!((on(0), on(1), on(2)), (2, 0, 2));
        assert!(b.choose(&all, &[], now, None).is_none());
    }
}
