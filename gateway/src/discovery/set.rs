//! What the watchers share: a stream of watcher events with its failures counted, and the set
//! of pods a watcher has seen, kept by name and replaced whole after each complete list.

use std::collections::BTreeMap;

use futures::stream::BoxStream;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};

use super::source::{Retry, SourceState};

/// A kube-rs watcher on `api` with our retry delays.
pub type Events<K> = BoxStream<'static, Result<Event<K>, watcher::Error>>;

pub fn watch<K>(api: Api<K>, config: watcher::Config) -> Events<K>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher::watcher(api, config)
        .backoff(Retry::default())
        .boxed()
}

/// The next event; a failed list or watch is counted on `state` (and retried by the watcher).
/// `None` when the stream ends.
pub async fn next<K>(events: &mut Events<K>, state: &SourceState) -> Option<Event<K>> {
    loop {
        match events.next().await? {
            Ok(e) => {
                state.ok();
                return Some(e);
            }
            Err(e) => state.error(&e),
        }
    }
}

/// Pods by name, each as what `view` makes of it (`None`: left out), with a complete list
/// replacing the set only once it is whole.
pub struct PodSet<T> {
    live: BTreeMap<String, T>,
    listing: Option<BTreeMap<String, T>>,
}

impl<T> Default for PodSet<T> {
    fn default() -> Self {
        PodSet {
            live: BTreeMap::new(),
            listing: None,
        }
    }
}

impl<T> PodSet<T> {
    /// Applies one event. Returns whether the live set may have changed (false while a list
    /// is being read).
    pub fn apply(&mut self, event: Event<Pod>, view: impl Fn(&Pod) -> Option<T>) -> bool {
        let put = |map: &mut BTreeMap<String, T>, p: &Pod| {
            let name = p.metadata.name.clone().unwrap_or_default();
            match view(p) {
                Some(v) => map.insert(name, v),
                None => map.remove(&name),
            };
        };
        match event {
            Event::Init => {
                self.listing = Some(BTreeMap::new());
                false
            }
            Event::InitApply(p) => {
                if let Some(l) = self.listing.as_mut() {
                    put(l, &p);
                }
                false
            }
            Event::InitDone => {
                self.live = self.listing.take().unwrap_or_default();
                true
            }
            Event::Apply(p) => {
                put(&mut self.live, &p);
                true
            }
            Event::Delete(p) => {
                self.live
                    .remove(p.metadata.name.as_deref().unwrap_or_default());
                true
            }
        }
    }

    pub fn live(&self) -> &BTreeMap<String, T> {
        &self.live
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pod(name: &str, ready: bool) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name}, "status": {"ready": ready}
        }))
        .unwrap()
    }

    fn view(p: &Pod) -> Option<String> {
        p.status.as_ref()?;
        Some(p.metadata.name.clone().unwrap_or_default())
    }

    #[test]
    fn a_list_replaces_the_set_only_when_whole() {
        let mut s: PodSet<String> = PodSet::default();
        assert!(s.apply(Event::Apply(pod("a", true)), view));
        assert!(!s.apply(Event::Init, view));
        assert!(!s.apply(Event::InitApply(pod("b", true)), view));
        assert_eq!(
            s.live().keys().collect::<Vec<_>>(),
            ["a"],
            "the old set serves during a list"
        );
        assert!(s.apply(Event::InitDone, view));
        assert_eq!(s.live().keys().collect::<Vec<_>>(), ["b"]);
        assert!(s.apply(Event::Delete(pod("b", true)), view));
        assert!(s.live().is_empty());
    }
}
