//! Progressive canary releases in the control process: the running releases, saved in a
//! [`Store`] at every transition and resumed at start; a runner that ticks each one every
//! second ([`runner`]); their weights published on the health feed; and their API ([`api`]).

pub mod api;
pub mod kube;
mod metrics;
pub mod runner;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use infergate_gpu::probe::unix_ms;
use infergate_release::engine::{Release, Transition};
use infergate_release::metrics::Http;
use infergate_release::spec::ReleaseSpec;
use infergate_release::store::Store;
use infergate_wire::feed::FeedRelease;

use crate::feed::Feed;
pub use metrics::ReleaseMetrics;

/// Posts a transition somewhere besides the log (Kubernetes Events).
pub trait EventSink: Send + Sync {
    fn post(&self, t: &Transition);
}

/// The releases this process knows, running or finished (until deleted).
pub struct Releases {
    map: Mutex<BTreeMap<String, Release>>,
    store: Option<Store>,
    feed: Feed,
    metrics: ReleaseMetrics,
    pub(crate) http: Http,
    events: Option<Arc<dyn EventSink>>,
}

/// Why a request about a release was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    NotFound(String),
    Conflict(String),
    Invalid(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotFound(m) | Refusal::Conflict(m) | Refusal::Invalid(m) => f.write_str(m),
        }
    }
}

impl Releases {
    /// Loads every saved release from `store` (when there is one) and publishes their weights.
    pub fn new(
        store: Option<Store>,
        feed: Feed,
        metrics: ReleaseMetrics,
        events: Option<Arc<dyn EventSink>>,
    ) -> Arc<Releases> {
        let mut map = BTreeMap::new();
        if let Some(s) = &store {
            let (all, errors) = s.load_all();
            for e in errors {
                tracing::error!(error = %e, "cannot read a saved release; it is left as it is");
            }
            for r in all {
                tracing::info!(
                    release = %r.spec.name,
                    state = %r.record.state,
                    step = ?r.record.current_step.map(|i| i + 1),
                    canary_weight = r.state.canary_weight,
                    "release resumed"
                );
                map.insert(r.spec.name.clone(), r);
            }
        }
        let me = Arc::new(Releases {
            map: Mutex::new(map),
            store,
            feed,
            metrics,
            http: Http::new(),
            events,
        });
        me.publish();
        me
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Release>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a release from its spec (YAML or JSON).
    pub fn create(&self, text: &str) -> Result<Release, Refusal> {
        let spec = ReleaseSpec::parse(text).map_err(|e| Refusal::Invalid(e.to_string()))?;
        let mut map = self.lock();
        if map.contains_key(&spec.name) {
            return Err(Refusal::Conflict(format!(
                "release {:?} exists; delete it first (DELETE /v1/releases/{})",
                spec.name, spec.name
            )));
        }
        if let Some(other) = map
            .values()
            .find(|r| r.is_active() && r.spec.model == spec.model)
        {
            return Err(Refusal::Conflict(format!(
                "release {:?} is running on model {:?}",
                other.spec.name, spec.model
            )));
        }
        let (r, transitions) = Release::new(spec, unix_ms());
        // A finished release of the model keeps its final weights on the feed until a new
        // release of the model takes over: from now on only the new one's weights count.
        for old in map
            .values_mut()
            .filter(|o| o.spec.model == r.spec.model && o.state.superseded_by.is_none())
        {
            old.state.superseded_by = Some(r.spec.name.clone());
            tracing::info!(release = %old.spec.name, by = %r.spec.name, "release superseded; its weights are no longer published");
            self.save(old);
        }
        self.save(&r);
        self.announce(&r, &transitions);
        map.insert(r.spec.name.clone(), r.clone());
        drop(map);
        self.publish();
        Ok(r)
    }

    pub fn get(&self, name: &str) -> Option<Release> {
        self.lock().get(name).cloned()
    }

    pub fn list(&self) -> Vec<Release> {
        self.lock().values().cloned().collect()
    }

    /// Aborts (`promote == false`) or promotes a running release.
    pub fn end(&self, name: &str, promote: bool) -> Result<Release, Refusal> {
        let mut map = self.lock();
        let r = map
            .get_mut(name)
            .ok_or_else(|| Refusal::NotFound(format!("no release {name:?}")))?;
        let now = unix_ms();
        let t = if promote {
            r.promote(now)
        } else {
            r.abort(now)
        }
        .map_err(Refusal::Conflict)?;
        self.save(r);
        self.announce(r, &[t]);
        let out = r.clone();
        drop(map);
        self.publish();
        Ok(out)
    }

    /// Forgets a release: its weights leave the feed and its saved file is removed.
    pub fn delete(&self, name: &str) -> Result<Release, Refusal> {
        let r = self
            .lock()
            .remove(name)
            .ok_or_else(|| Refusal::NotFound(format!("no release {name:?}")))?;
        if let Some(s) = &self.store {
            if let Err(e) = s.remove(name) {
                tracing::error!(release = %name, error = %e, "cannot remove the saved release");
            }
        }
        self.metrics.forget(&r);
        tracing::info!(release = %name, state = %r.record.state, "release deleted; its weights are no longer published");
        self.publish();
        Ok(r)
    }

    /// Saves `r`; a failure is logged (the release goes on in memory).
    fn save(&self, r: &Release) {
        if let Some(s) = &self.store {
            if let Err(e) = s.save(r) {
                tracing::error!(release = %r.spec.name, error = %e, "cannot save the release");
            }
        }
    }

    /// Logs transitions, posts them as events and updates the metrics.
    fn announce(&self, r: &Release, transitions: &[Transition]) {
        for t in transitions {
            if t.warning {
                tracing::warn!(release = %r.spec.name, reason = t.reason, state = %r.record.state, canary_weight = r.state.canary_weight, "{}", t.message);
            } else {
                tracing::info!(release = %r.spec.name, reason = t.reason, state = %r.record.state, canary_weight = r.state.canary_weight, "{}", t.message);
            }
            if let Some(e) = &self.events {
                e.post(t);
            }
        }
        if !r.is_active() && !transitions.is_empty() {
            if let Some(change) = r.final_split() {
                tracing::info!(release = %r.spec.name, "to make the config agree with the running weights, {change}");
            }
        }
        self.metrics.observe(r);
    }

    /// Publishes the weights of every release on the feed.
    pub fn publish(&self) {
        let releases: Vec<FeedRelease> = self
            .lock()
            .values()
            .filter(|r| r.state.superseded_by.is_none())
            .map(for_feed)
            .collect();
        self.feed.publish_releases(releases);
    }
}

/// Opens the releases' store (`release.state_dir`; in memory only when it cannot be created),
/// resumes the saved releases and registers their metrics.
pub fn start(
    cfg: &crate::config::ControlConfig,
    feed: Feed,
    registry: &prometheus::Registry,
    events: Option<Arc<dyn EventSink>>,
) -> prometheus::Result<Arc<Releases>> {
    let metrics = ReleaseMetrics::new(registry)?;
    let store = match Store::open(&cfg.release.state_dir) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "releases will run in memory only: a restart forgets them");
            None
        }
    };
    Ok(Releases::new(store, feed, metrics, events))
}

/// A release's weights as the feed carries them.
pub fn for_feed(r: &Release) -> FeedRelease {
    let c = r.state.canary_weight;
    FeedRelease {
        name: r.spec.name.clone(),
        model: r.spec.model.clone(),
        generation: r.state.generation,
        weights: [(r.spec.stable.clone(), 100 - c), (r.spec.canary.clone(), c)]
            .into_iter()
            .collect(),
        state: r.record.state.clone(),
    }
}
