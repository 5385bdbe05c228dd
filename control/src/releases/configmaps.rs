//! Releases kept in the Kubernetes API: one ConfigMap per release in control's namespace,
//! `infergate-release-NAME` (the name as a DNS label, [`object_name`]; the release's Lease is named after it too),
//! labelled `app.kubernetes.io/component: infergate-release`, annotated
//! `infergate.io/release: NAME`, with the release (spec, record, engine state: what the file
//! store writes) as JSON under the data key `release.json`.
//!
//! A release is created with a create (409 when it exists) and every later write is an update
//! carrying the resourceVersion this process last read: a 409 means another process wrote
//! since, and the release is read again instead.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use infergate_release::engine::Release;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Client, ResourceExt};

/// The label every release ConfigMap carries, and its value.
pub const LABEL: (&str, &str) = ("app.kubernetes.io/component", "infergate-release");
/// The annotation naming the release (ConfigMap names are DNS labels).
pub const ANNOTATION: &str = "infergate.io/release";
/// The data key holding the release's JSON.
pub const DATA_KEY: &str = "release.json";
/// `fieldManager` of the writes.
const FIELD_MANAGER: &str = "infergate-control";

/// The outcome of writing a release.
#[derive(Debug)]
pub enum Saved {
    /// Written; the new resourceVersion (none for the file store).
    Ok(Option<u64>),
    /// Another process wrote first: the release as stored now, with its version (`None`:
    /// deleted meanwhile).
    Stale(Option<Box<(Release, Option<u64>)>>),
    /// Not written.
    Failed(String),
}

/// The releases' ConfigMaps in one namespace.
pub struct ConfigMaps {
    api: Api<ConfigMap>,
    namespace: String,
}

/// The name of a release's objects in the API, its ConfigMap and (as the prefix) its Lease:
/// a DNS label, lower case, `-` for `_` and `.`.
pub fn object_name(release: &str) -> String {
    let name: String = release
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    format!("infergate-release-{name}")
}

/// A resourceVersion as a number (the API server's are etcd revisions); `None` when opaque.
pub fn version_of(cm: &ConfigMap) -> Option<u64> {
    cm.resource_version().and_then(|v| v.parse().ok())
}

/// The release a ConfigMap holds; the error says which ConfigMap and why.
pub fn decode(cm: &ConfigMap) -> Result<Release, String> {
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(DATA_KEY))
        .ok_or_else(|| format!("ConfigMap {}: no data key {DATA_KEY}", cm.name_any()))?;
    serde_json::from_str(text).map_err(|e| format!("ConfigMap {} {DATA_KEY}: {e}", cm.name_any()))
}

/// Runs `f` to completion from synchronous code on the multi-thread runtime (the API's
/// handlers and the runner are synchronous where they write).
fn blocking<F: Future>(f: F) -> Result<F::Output, String> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| "the Kubernetes release store needs a tokio runtime".to_owned())?;
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return Err("the Kubernetes release store needs the multi-thread runtime".into());
    }
    Ok(tokio::task::block_in_place(|| handle.block_on(f)))
}

impl ConfigMaps {
    pub fn new(client: Client, namespace: &str) -> ConfigMaps {
        ConfigMaps {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
        }
    }

    /// A client from the environment (in-cluster service account or `KUBECONFIG`), without
    /// kube's own retries, with a 10 s read timeout.
    pub async fn infer(namespace: &str) -> Result<ConfigMaps, String> {
        let mut kc = kube::Config::infer()
            .await
            .map_err(|e| format!("kubernetes client config: {e}"))?;
        kc.default_retry = false;
        kc.read_timeout = Some(Duration::from_secs(10));
        let client = Client::try_from(kc).map_err(|e| format!("kubernetes client: {e}"))?;
        Ok(ConfigMaps::new(client, namespace))
    }

    pub fn api(&self) -> &Api<ConfigMap> {
        &self.api
    }

    fn describe(&self, release: &str) -> String {
        format!(
            "ConfigMap {}/{} of release {release:?}",
            self.namespace,
            object_name(release)
        )
    }

    fn to_config_map(&self, r: &Release, version: Option<u64>) -> Result<ConfigMap, String> {
        let text = serde_json::to_string(r).map_err(|e| format!("release {}: {e}", r.spec.name))?;
        Ok(ConfigMap {
            metadata: ObjectMeta {
                name: Some(object_name(&r.spec.name)),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(LABEL.0.into(), LABEL.1.into())])),
                annotations: Some(BTreeMap::from([(ANNOTATION.into(), r.spec.name.clone())])),
                resource_version: version.map(|v| v.to_string()),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(DATA_KEY.into(), text)])),
            ..ConfigMap::default()
        })
    }

    fn params() -> PostParams {
        PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        }
    }

    /// Creates the release's ConfigMap: its version, `Err(None)` when it exists already,
    /// `Err(Some(reason))` when it cannot be written.
    pub fn create(&self, r: &Release) -> Result<Option<u64>, Option<String>> {
        let cm = self.to_config_map(r, None).map_err(Some)?;
        match blocking(self.api.create(&Self::params(), &cm)).map_err(Some)? {
            Ok(made) => Ok(version_of(&made)),
            Err(kube::Error::Api(s)) if s.code == 409 => Err(None),
            Err(e) => Err(Some(format!(
                "cannot create the {}: {e}",
                self.describe(&r.spec.name)
            ))),
        }
    }

    /// Updates the release's ConfigMap from `version` (the one last read).
    pub fn update(&self, r: &Release, version: Option<u64>) -> Saved {
        let cm = match self.to_config_map(r, version) {
            Ok(cm) => cm,
            Err(e) => return Saved::Failed(e),
        };
        let name = object_name(&r.spec.name);
        let written = match blocking(self.api.replace(&name, &Self::params(), &cm)) {
            Ok(w) => w,
            Err(e) => return Saved::Failed(e),
        };
        match written {
            Ok(done) => Saved::Ok(version_of(&done)),
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                match blocking(self.api.get_opt(&name)) {
                    Ok(Ok(None)) => Saved::Stale(None),
                    Ok(Ok(Some(cm))) => match decode(&cm) {
                        Ok(current) => Saved::Stale(Some(Box::new((current, version_of(&cm))))),
                        Err(e) => Saved::Failed(e),
                    },
                    Ok(Err(e)) => Saved::Failed(format!(
                        "cannot read the {} again: {e}",
                        self.describe(&r.spec.name)
                    )),
                    Err(e) => Saved::Failed(e),
                }
            }
            Err(e) => Saved::Failed(format!(
                "cannot update the {}: {e}",
                self.describe(&r.spec.name)
            )),
        }
    }

    /// Deletes the release's ConfigMap (absent is fine).
    pub fn remove(&self, release: &str) -> Result<(), String> {
        let name = object_name(release);
        match blocking(self.api.delete(&name, &DeleteParams::default()))? {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(format!("cannot delete the {}: {e}", self.describe(release))),
        }
    }
}

#[cfg(test)]
mod name_tests {
    #[test]
    fn object_names_are_dns_labels() {
        assert_eq!(
            super::object_name("Demo_v2.1"),
            "infergate-release-demo-v2-1"
        );
    }
}
