//! Release weights from the health feeds, owned by the writer. Each feed document lists the
//! releases its control process runs; of two documents about the same release the higher
//! `generation` wins. A release's weights stay while its feed is unreadable (a gateway that
//! loses control keeps the last weights it was given, and says so in
//! `infergate_release_stale`), and go when the feed that gave them stops listing it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use infergate_wire::feed::FeedRelease;

use crate::compile::Weights;

/// A release as last heard, from which feed, and whether that feed is stale.
struct Held {
    release: FeedRelease,
    feed: String,
    stale: bool,
}

#[derive(Default)]
pub struct ReleaseState {
    by_name: BTreeMap<String, Held>,
}

impl ReleaseState {
    /// Records what feed `feed` lists now. Returns whether any model's weights changed.
    pub fn update(&mut self, feed: &str, listed: &[FeedRelease]) -> bool {
        let before = self.weights();
        // Releases this feed gave before and lists no more have ended.
        self.by_name
            .retain(|name, h| h.feed != feed || listed.iter().any(|r| &r.name == name));
        for r in listed {
            match self.by_name.get_mut(&r.name) {
                Some(h) if h.release.generation > r.generation => {}
                Some(h) => {
                    h.release = r.clone();
                    h.feed = feed.to_owned();
                    h.stale = false;
                }
                None => {
                    tracing::info!(release = %r.name, model = %r.model, weights = ?r.weights, state = %r.state, "release weights received");
                    let held = Held {
                        release: r.clone(),
                        feed: feed.to_owned(),
                        stale: false,
                    };
                    self.by_name.insert(r.name.clone(), held);
                }
            }
        }
        self.weights() != before
    }

    /// The feed went stale: its releases keep their weights, marked stale.
    pub fn feed_stale(&mut self, feed: &str) {
        for (name, h) in self.by_name.iter_mut().filter(|(_, h)| h.feed == feed) {
            if !h.stale {
                tracing::warn!(release = %name, feed, "release feed unreadable: keeping the last weights");
                h.stale = true;
            }
        }
    }

    /// The weights by model: of several releases of one model, the one with the highest
    /// generation (then name).
    pub fn weights(&self) -> HashMap<Box<str>, Arc<Weights>> {
        let mut best: HashMap<&str, &FeedRelease> = HashMap::new();
        for h in self.by_name.values() {
            let r = &h.release;
            let e = best.entry(r.model.as_str()).or_insert(r);
            if (r.generation, &r.name) > (e.generation, &e.name) {
                *e = r;
            }
        }
        best.into_iter()
            .map(|(m, r)| (m.into(), Arc::new(r.weights.clone())))
            .collect()
    }

    /// Each release with its model, weights and whether its feed is stale, for metrics.
    pub fn each(&self) -> impl Iterator<Item = (&FeedRelease, bool)> {
        self.by_name.values().map(|h| (&h.release, h.stale))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn release(name: &str, generation: u64, canary: u32) -> FeedRelease {
        FeedRelease {
            name: name.into(),
            model: "demo".into(),
            generation,
            weights: [("stable".into(), 100 - canary), ("canary".into(), canary)].into(),
            state: "running".into(),
        }
    }

    fn canary(s: &ReleaseState) -> u32 {
        s.weights()["demo"]["canary"]
    }

    #[test]
    fn the_higher_generation_wins_across_feeds() {
        let mut s = ReleaseState::default();
        assert!(s.update("feed-a", &[release("r1", 2, 25)]));
        assert_eq!(canary(&s), 25);
        // Another feed still lists the older generation: no change.
        assert!(!s.update("feed-b", &[release("r1", 1, 5)]));
        assert_eq!(canary(&s), 25);
        assert!(s.update("feed-b", &[release("r1", 3, 50)]));
        assert_eq!(canary(&s), 50);
    }

    #[test]
    fn stale_feeds_keep_their_weights_and_an_ended_release_goes() {
        let mut s = ReleaseState::default();
        s.update("feed-a", &[release("r1", 1, 10)]);
        s.feed_stale("feed-a");
        assert_eq!(canary(&s), 10);
        assert!(s.each().all(|(_, stale)| stale));
        s.update("feed-a", &[release("r1", 2, 10)]);
        assert!(s.each().all(|(_, stale)| !stale));
        assert!(s.update("feed-a", &[]));
        assert!(s.weights().is_empty());
    }
}
