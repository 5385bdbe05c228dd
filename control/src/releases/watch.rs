//! Every control process follows the releases' ConfigMaps with a watch (label
//! `app.kubernetes.io/component=infergate-release`) and publishes every release found there
//! on its own feed, whichever process drives it; a deleted ConfigMap takes the release off.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::ResourceExt;

use super::configmaps::{decode, version_of, ConfigMaps, ANNOTATION, LABEL};
use super::Releases;

/// Follows the ConfigMaps until the task is aborted; errors are logged and the watch starts
/// again after a backoff.
pub async fn run(releases: Arc<Releases>, store: Arc<ConfigMaps>) {
    let cfg = watcher::Config::default().labels(&format!("{}={}", LABEL.0, LABEL.1));
    let mut events = watcher(store.api().clone(), cfg).default_backoff().boxed();
    let mut listing = BTreeSet::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => listing.clear(),
            Ok(Event::InitApply(cm)) => {
                if let Some(name) = apply(&releases, &cm) {
                    listing.insert(name);
                }
            }
            Ok(Event::InitDone) => releases.retain_stored(&listing),
            Ok(Event::Apply(cm)) => {
                apply(&releases, &cm);
            }
            Ok(Event::Delete(cm)) => {
                let name = release_name(&cm);
                if releases.forget(&name).is_some() {
                    tracing::info!(release = %name, "release deleted; its weights are no longer published");
                }
                releases.publish();
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the releases' ConfigMaps; trying again");
            }
        }
    }
}

/// Takes the release a ConfigMap holds; its name, or `None` when the ConfigMap is unreadable.
fn apply(releases: &Releases, cm: &k8s_openapi::api::core::v1::ConfigMap) -> Option<String> {
    match decode(cm) {
        Ok(r) => {
            releases.stored(&r, version_of(cm));
            Some(r.spec.name)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read a release's ConfigMap; it is left as it is");
            None
        }
    }
}

/// The release a ConfigMap is for: its annotation, else its name.
fn release_name(cm: &k8s_openapi::api::core::v1::ConfigMap) -> String {
    decode(cm)
        .map(|r| r.spec.name)
        .ok()
        .or_else(|| cm.annotations().get(ANNOTATION).cloned())
        .unwrap_or_else(|| cm.name_any())
}
