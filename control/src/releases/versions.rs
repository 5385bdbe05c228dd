//! Which version of each release this process holds: what it wrote itself, and what it read
//! from the store (a 409's re-read, or the ConfigMaps' watch). Versions only move forward, so
//! an older copy never replaces a newer one whichever arrives last.

use std::collections::BTreeSet;

use infergate_release::engine::Release;

use super::Releases;

impl Releases {
    /// The store's version of `name` as last read or written (ConfigMaps only).
    pub(crate) fn version(&self, name: &str) -> Option<u64> {
        self.versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
    }

    /// Keeps `r` at `version` unless a newer version is held already; whether it was kept.
    pub(crate) fn keep(&self, r: &Release, version: Option<u64>) -> bool {
        let mut map = self.lock();
        let mut versions = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        let name = &r.spec.name;
        if let (Some(new), Some(held)) = (version, versions.get(name)) {
            if new < *held {
                return false;
            }
        }
        if let Some(v) = version {
            versions.insert(name.clone(), v);
        }
        map.insert(name.clone(), r.clone());
        drop(versions);
        drop(map);
        self.metrics.observe(r);
        true
    }

    /// Takes another process's write: the release as stored now, or its deletion.
    pub(crate) fn adopt(&self, name: &str, current: Option<Box<(Release, Option<u64>)>>) {
        match current {
            Some(current) => {
                let (r, v) = *current;
                self.keep(&r, v);
            }
            None => {
                self.forget(name);
            }
        }
        self.publish();
    }

    /// Drops a release from memory (its saved state is left alone).
    pub(crate) fn forget(&self, name: &str) -> Option<Release> {
        let mut map = self.lock();
        self.versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        let r = map.remove(name)?;
        drop(map);
        self.metrics.forget(&r);
        Some(r)
    }

    /// A release as the store holds it now (the watch): kept when newer than the one held,
    /// and published.
    pub(crate) fn stored(&self, r: &Release, version: Option<u64>) {
        let known = self.lock().contains_key(&r.spec.name);
        if self.keep(r, version) && !known {
            super::log_resumed(r);
        }
        self.publish();
    }

    /// The store holds exactly the releases `names` (after the watch listed them again):
    /// the others were deleted meanwhile.
    pub(crate) fn retain_stored(&self, names: &BTreeSet<String>) {
        let gone: Vec<String> = self
            .lock()
            .keys()
            .filter(|n| !names.contains(*n))
            .cloned()
            .collect();
        for name in gone {
            if self.forget(&name).is_some() {
                tracing::info!(release = %name, "release deleted by another control process; its weights are no longer published");
            }
        }
        self.publish();
    }
}
