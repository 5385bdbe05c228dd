//! Progressive canary releases in the control process: the releases, saved at every
//! transition ([`persist`]: files in `release.state_dir` resumed at start, or in Kubernetes
//! mode ConfigMaps that every control process follows with a watch, [`watch`]); a runner
//! that ticks each one every second ([`runner`]; in Kubernetes only the holder of its Lease
//! does, [`kube`]); their weights published on the health feed; and their API ([`api`]).

pub mod api;
#[cfg(test)]
mod cluster_tests;
pub mod configmaps;
pub mod kube;
mod metrics;
pub mod persist;
pub mod runner;
#[cfg(test)]
mod tests;
mod versions;
pub mod watch;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use infergate_gpu::probe::unix_ms;
use infergate_release::engine::{Release, Transition};
use infergate_release::metrics::Http;
use infergate_release::spec::ReleaseSpec;
use infergate_release::store::Store;
use infergate_wire::feed::FeedRelease;

use crate::feed::Feed;
use configmaps::Saved;
pub use metrics::ReleaseMetrics;
pub use persist::Backend;

/// Posts a transition somewhere besides the log (Kubernetes Events).
pub trait EventSink: Send + Sync {
    fn post(&self, t: &Transition);
}

/// The releases this process knows, running or finished (until deleted).
pub struct Releases {
    map: Mutex<BTreeMap<String, Release>>,
    /// The store's version of each release as last read or written (ConfigMaps); locked
    /// after `map`, never before it.
    versions: Mutex<HashMap<String, u64>>,
    backend: Backend,
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
    /// The store (the Kubernetes API) cannot be written now.
    Unavailable(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotFound(m)
            | Refusal::Conflict(m)
            | Refusal::Invalid(m)
            | Refusal::Unavailable(m) => f.write_str(m),
        }
    }
}

/// Attempts of an abort or promote that keeps meeting a newer version of the release.
const END_ATTEMPTS: usize = 3;

impl Releases {
    /// Loads every release saved in files (the file backend) and publishes their weights;
    /// ConfigMaps arrive through [`watch::run`].
    pub fn new(
        backend: Backend,
        feed: Feed,
        metrics: ReleaseMetrics,
        events: Option<Arc<dyn EventSink>>,
    ) -> Arc<Releases> {
        let mut map = BTreeMap::new();
        if let Backend::File(s) = &backend {
            let (all, errors) = s.load_all();
            for e in errors {
                tracing::error!(error = %e, "cannot read a saved release; it is left as it is");
            }
            for r in all {
                log_resumed(&r);
                map.insert(r.spec.name.clone(), r);
            }
        }
        let me = Arc::new(Releases {
            map: Mutex::new(map),
            versions: Mutex::new(HashMap::new()),
            backend,
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
        let superseded: Vec<Release> = {
            let map = self.lock();
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
            map.values()
                .filter(|o| o.spec.model == spec.model && o.state.superseded_by.is_none())
                .cloned()
                .collect()
        };
        let (r, transitions) = Release::new(spec, unix_ms());
        let version = self.backend.create(&r)?;
        self.keep(&r, version);
        // A finished release of the model keeps its final weights on the feed until a new
        // release of the model takes over: from now on only the new one's weights count.
        for mut old in superseded {
            old.state.superseded_by = Some(r.spec.name.clone());
            tracing::info!(release = %old.spec.name, by = %r.spec.name, "release superseded; its weights are no longer published");
            self.save(&old);
        }
        self.announce(&r, &transitions);
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
        for _ in 0..END_ATTEMPTS {
            let (mut r, version) = {
                let map = self.lock();
                let r = map
                    .get(name)
                    .cloned()
                    .ok_or_else(|| Refusal::NotFound(format!("no release {name:?}")))?;
                (r, self.version(name))
            };
            let now = unix_ms();
            let t = if promote {
                r.promote(now)
            } else {
                r.abort(now)
            }
            .map_err(Refusal::Conflict)?;
            match self.backend.save(&r, version) {
                Saved::Ok(v) => {
                    self.keep(&r, v);
                    self.announce(&r, &[t]);
                    self.publish();
                    return Ok(r);
                }
                Saved::Stale(current) => self.adopt(name, current),
                Saved::Failed(e) => return Err(Refusal::Unavailable(e)),
            }
        }
        Err(Refusal::Conflict(format!(
            "release {name:?} kept changing while it was being ended; try again"
        )))
    }

    /// Forgets a release: its weights leave the feed and its saved state is removed.
    pub fn delete(&self, name: &str) -> Result<Release, Refusal> {
        let r = self
            .get(name)
            .ok_or_else(|| Refusal::NotFound(format!("no release {name:?}")))?;
        self.backend.remove(name)?;
        // The watch may have forgotten it already.
        self.forget(name);
        tracing::info!(release = %name, state = %r.record.state, "release deleted; its weights are no longer published");
        self.publish();
        Ok(r)
    }

    /// Saves `r` over the version last read and keeps what was written; another process's
    /// newer write is taken instead. Whether `r` was written.
    fn save(&self, r: &Release) -> bool {
        match self.backend.save(r, self.version(&r.spec.name)) {
            Saved::Ok(v) => {
                self.keep(r, v);
                true
            }
            Saved::Stale(current) => {
                tracing::info!(release = %r.spec.name, "the release was changed by another control process; its state is read again");
                self.adopt(&r.spec.name, current);
                false
            }
            Saved::Failed(e) => {
                tracing::error!(release = %r.spec.name, error = %e, "cannot save the release");
                false
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

fn log_resumed(r: &Release) {
    tracing::info!(
        release = %r.spec.name,
        state = %r.record.state,
        step = ?r.record.current_step.map(|i| i + 1),
        canary_weight = r.state.canary_weight,
        "release resumed"
    );
}

/// Opens the releases' store and registers their metrics. With `cluster` (Kubernetes mode)
/// releases are ConfigMaps, followed by a watch on a task of the current runtime; otherwise
/// files in `release.state_dir` (in memory only when it cannot be created), resumed now.
pub fn start(
    cfg: &crate::config::ControlConfig,
    feed: Feed,
    registry: &prometheus::Registry,
    cluster: Option<kube::Cluster>,
) -> prometheus::Result<Arc<Releases>> {
    let metrics = ReleaseMetrics::new(registry)?;
    let Some(cluster) = cluster else {
        let backend = match Store::open(&cfg.release.state_dir) {
            Ok(s) => Backend::File(s),
            Err(e) => {
                tracing::error!(error = %e, "releases will run in memory only: a restart forgets them");
                Backend::Memory
            }
        };
        return Ok(Releases::new(backend, feed, metrics, None));
    };
    let store = cluster.store;
    let releases = Releases::new(Backend::Kube(store.clone()), feed, metrics, cluster.events);
    tokio::spawn(watch::run(releases.clone(), store));
    Ok(releases)
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
