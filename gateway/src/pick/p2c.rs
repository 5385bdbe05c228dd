//! Power of two choices on in-flight requests: the default policy, and the fallback of the
//! others when their candidates cannot take the request.

use rand::Rng;
use tokio::time::Instant;

use crate::backend::BackendRt;
use crate::endpoint::InFlight;

impl BackendRt {
    /// Power of two choices on in-flight requests: two distinct endpoints at random among those
    /// that take traffic (not ejected, not in `exclude`), the less loaded wins. An endpoint at
    /// its in-flight limit is passed over. When no endpoint takes traffic, the one whose ejection
    /// ends first is used: traffic still flows to the least bad. `None` when every endpoint not
    /// excluded is full.
    ///
    /// `members` are the endpoint indices to choose from (a variant's endpoints); `exclude` and
    /// the returned index are positions in `members`.
    pub fn pick(
        &self,
        members: &[usize],
        exclude: &[usize],
        now: Instant,
    ) -> Option<(usize, InFlight)> {
        let n = members.len();
        let limit = self.max_in_flight;
        let ep = |i: usize| &self.endpoints[members[i]];
        let try_take = |i: usize| ep(i).state.try_acquire(limit).map(|g| (i, g));
        let load = |i: usize| ep(i).state.in_flight();
        let usable = |i: usize| !exclude.contains(&i) && !ep(i).state.is_ejected(now);
        let better = |a: usize, b: usize| if load(b) < load(a) { (b, a) } else { (a, b) };

        if n >= 2 {
            // Fast path: two distinct random endpoints, both usable.
            let mut rng = rand::rng();
            let a = rng.random_range(0..n);
            let mut b = rng.random_range(0..n - 1);
            if b >= a {
                b += 1;
            }
            if usable(a) && usable(b) {
                let (first, second) = better(a, b);
                if let Some(t) = try_take(first).or_else(|| try_take(second)) {
                    return Some(t);
                }
            }
        }
        let candidates: Vec<usize> = (0..n).filter(|&i| usable(i)).collect();
        match candidates.len() {
            0 => {}
            1 => {
                if let Some(t) = try_take(candidates[0]) {
                    return Some(t);
                }
            }
            k => {
                let mut rng = rand::rng();
                let a = rng.random_range(0..k);
                let mut b = rng.random_range(0..k - 1);
                if b >= a {
                    b += 1;
                }
                let (first, second) = better(candidates[a], candidates[b]);
                if let Some(t) = try_take(first).or_else(|| try_take(second)) {
                    return Some(t);
                }
                let mut by_load = candidates.clone();
                by_load.sort_by_key(|&i| load(i));
                if let Some(t) = by_load.into_iter().find_map(try_take) {
                    return Some(t);
                }
            }
        }
        if !candidates.is_empty() {
            return None;
        }
        // Nothing usable: the outlier-ejected endpoint that comes back first, if not excluded.
        // An endpoint on an unhealthy GPU never gets traffic this way.
        let mut ejected: Vec<(Instant, usize)> = (0..n)
            .filter(|&i| !exclude.contains(&i) && !ep(i).state.feed_blocked(now))
            .map(|i| {
                let until = ep(i).state.ejection(now).map_or(now, |e| e.0);
                (until, i)
            })
            .collect();
        ejected.sort_unstable();
        ejected.into_iter().find_map(|(_, i)| try_take(i))
    }
}
