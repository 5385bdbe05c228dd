//! Where releases are kept: nowhere (memory only), one file each in `release.state_dir`, or
//! one ConfigMap each in the Kubernetes API ([`ConfigMaps`], `remediation.mode: kubernetes`).

use std::sync::Arc;

use infergate_release::engine::Release;
use infergate_release::store::Store;

use super::configmaps::{ConfigMaps, Saved};
use super::Refusal;

/// The store behind [`super::Releases`].
#[derive(Clone)]
pub enum Backend {
    /// Nothing is saved: a restart forgets every release.
    Memory,
    /// `state_dir/NAME.json`, read once at start.
    File(Store),
    /// ConfigMaps, followed by a watch in every control process.
    Kube(Arc<ConfigMaps>),
}

impl Backend {
    pub fn is_kube(&self) -> bool {
        matches!(self, Backend::Kube(_))
    }

    /// Saves a new release: its version; a conflict when it exists in the cluster, or
    /// unavailable when it cannot be written there. A file that cannot be written is logged
    /// and the release runs in memory.
    pub fn create(&self, r: &Release) -> Result<Option<u64>, Refusal> {
        match self {
            Backend::Kube(k) => k.create(r).map_err(|e| match e {
                None => Refusal::Conflict(format!(
                    "release {:?} exists in the cluster; delete it first (DELETE /v1/releases/{})",
                    r.spec.name, r.spec.name
                )),
                Some(reason) => Refusal::Unavailable(reason),
            }),
            _ => match self.save(r, None) {
                Saved::Ok(v) => Ok(v),
                _ => Ok(None),
            },
        }
    }

    /// Saves `r` over the version `version` read last. Files: a failure is logged and counts
    /// as saved (the release goes on in memory).
    pub fn save(&self, r: &Release, version: Option<u64>) -> Saved {
        match self {
            Backend::Memory => Saved::Ok(None),
            Backend::File(s) => {
                if let Err(e) = s.save(r) {
                    tracing::error!(release = %r.spec.name, error = %e, "cannot save the release");
                }
                Saved::Ok(None)
            }
            Backend::Kube(k) => k.update(r, version),
        }
    }

    /// Removes a saved release (absent is fine). Files: a failure is logged.
    pub fn remove(&self, name: &str) -> Result<(), Refusal> {
        match self {
            Backend::Memory => Ok(()),
            Backend::File(s) => {
                if let Err(e) = s.remove(name) {
                    tracing::error!(release = %name, error = %e, "cannot remove the saved release");
                }
                Ok(())
            }
            Backend::Kube(k) => k.remove(name).map_err(Refusal::Unavailable),
        }
    }
}
