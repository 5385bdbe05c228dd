//! Endpoint choice: power of two choices on in-flight requests.

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use infergate_config::Config;

    use super::*;
    use crate::compile::Compiler;
    use crate::metrics::Metrics;
    use crate::table::Table;

    fn table(yaml_endpoints: &str, limit: &str) -> Table {
        let yaml = format!(
            "listeners: {{ data: {{ address: '127.0.0.1:0' }}, admin: {{ address: '127.0.0.1:0' }} }}\n\
             backends: [{{ name: b, endpoints: [{yaml_endpoints}] {limit} }}]\n\
             models: [{{ name: m, backend: b }}]\n"
        );
        let cfg = Config::from_yaml(&yaml).unwrap();
        Compiler::new(Arc::new(Metrics::new().unwrap()))
            .compile(&Arc::new(cfg))
            .unwrap()
    }

    fn all(b: &BackendRt) -> Vec<usize> {
        (0..b.endpoints.len()).collect()
    }

    #[tokio::test]
    async fn p2c_prefers_the_less_loaded_endpoint() {
        let t = table(
            "{url: 'http://127.0.0.1:1'}, {url: 'http://127.0.0.1:2/v1/'}",
            "",
        );
        let b = &t.route("m").unwrap().variants[0].backend;
        assert_eq!(b.endpoints[1].prefix.as_ref(), "/v1");
        let busy: Vec<_> = (0..5).map(|_| b.endpoints[0].state.acquire()).collect();
        for _ in 0..100 {
            let (i, _g) = b.pick(&all(b), &[], Instant::now()).unwrap();
            assert_eq!(i, 1);
        }
        drop(busy);
        let mut seen = [0i32; 2];
        let mut held = Vec::new();
        for _ in 0..100 {
            let (i, g) = b.pick(&all(b), &[], Instant::now()).unwrap();
            seen[i] += 1;
            held.push(g);
        }
        // Load is balanced: picking keeps the two counts within one of each other.
        assert!((seen[0] - seen[1]).abs() <= 1, "{seen:?}");
    }

    #[tokio::test]
    async fn full_endpoints_are_passed_over() {
        let t = table(
            "{url: 'http://127.0.0.1:1'}, {url: 'http://127.0.0.1:2'}, {url: 'http://127.0.0.1:3'}",
            ", limits: { max_in_flight_per_endpoint: 2 }",
        );
        let b = &t.route("m").unwrap().variants[0].backend;
        let held: Vec<_> = (0..6)
            .map(|_| b.pick(&all(b), &[], Instant::now()).expect("capacity left"))
            .collect();
        assert!(b.endpoints.iter().all(|e| e.state.in_flight() == 2));
        assert!(b.pick(&all(b), &[], Instant::now()).is_none());
        drop(held);
        assert!(b.pick(&all(b), &[], Instant::now()).is_some());
    }
}
