//! What a test does to the fake: put, change and delete objects, read what clients wrote,
//! compact history, take the server down, and read what it served.

use std::sync::atomic::Ordering;
use std::sync::PoisonError;
use std::time::Duration;

use crate::clock;
use crate::kind::Kind;
use crate::objects::{self, FakeInferencePool, FakePod};
use crate::server::FakeKube;
use crate::stats::{Counters, RequestRecord};
use crate::store::Missing;

impl FakeKube {
    /// Creates or replaces a pod (ADDED, or MODIFIED when it exists; nothing when identical).
    /// Returns the resourceVersion it is stored at.
    pub fn apply_pod(&self, pod: FakePod) -> u64 {
        let key = (Kind::Pod, pod.namespace.clone(), pod.name.clone());
        self.shared
            .write(|s| s.apply(key, &clock::now(), |created| pod.to_json(created)))
    }

    /// Sets the pod's Ready and ContainersReady conditions.
    pub fn set_ready(&self, namespace: &str, name: &str, ready: bool) -> Result<u64, Missing> {
        let now = clock::now();
        self.shared.write(|s| {
            s.update(pod_key(namespace, name), |p| {
                objects::set_ready(p, ready, &now)
            })
        })
    }

    /// Marks the pod as being deleted (`metadata.deletionTimestamp`); it stays listed until
    /// [`FakeKube::delete_pod`].
    pub fn set_terminating(&self, namespace: &str, name: &str) -> Result<u64, Missing> {
        let now = clock::now();
        self.shared.write(|s| {
            s.update(pod_key(namespace, name), |p| {
                objects::set_terminating(p, &now)
            })
        })
    }

    /// Removes the pod (DELETED).
    pub fn delete_pod(&self, namespace: &str, name: &str) -> Result<u64, Missing> {
        self.shared.write(|s| s.delete(pod_key(namespace, name)))
    }

    /// Creates or replaces an InferencePool; `metadata.generation` grows when the spec changes.
    pub fn apply_inference_pool(&self, pool: FakeInferencePool) -> u64 {
        let key = (
            Kind::InferencePool,
            pool.namespace.clone(),
            pool.name.clone(),
        );
        self.shared
            .write(|s| s.apply(key, &clock::now(), |_| pool.to_json()))
    }

    /// Removes the InferencePool (DELETED).
    pub fn delete_inference_pool(&self, namespace: &str, name: &str) -> Result<u64, Missing> {
        let key = (Kind::InferencePool, namespace.to_owned(), name.to_owned());
        self.shared.write(|s| s.delete(key))
    }

    /// The ConfigMap as stored now (with `metadata.resourceVersion`), if it exists.
    pub fn config_map(&self, namespace: &str, name: &str) -> Option<serde_json::Value> {
        let key = (Kind::ConfigMap, namespace.to_owned(), name.to_owned());
        self.shared.store().get(&key).cloned()
    }

    /// The names of the ConfigMaps in `namespace`, sorted.
    pub fn config_map_names(&self, namespace: &str) -> Vec<String> {
        let store = self.shared.store();
        store
            .snapshot(Kind::ConfigMap, Some(namespace), store.rv())
            .iter()
            .filter_map(|o| o.pointer("/metadata/name")?.as_str().map(str::to_owned))
            .collect()
    }

    /// The Lease as stored now, if it exists.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<serde_json::Value> {
        let key = (Kind::Lease, namespace.to_owned(), name.to_owned());
        self.shared.store().get(&key).cloned()
    }

    /// The Events posted in `namespace`, oldest first (by resourceVersion), as stored.
    pub fn events(&self, namespace: &str) -> Vec<serde_json::Value> {
        let store = self.shared.store();
        let mut events = store.snapshot(Kind::Event, Some(namespace), store.rv());
        events.sort_by_key(|e| {
            e.pointer("/metadata/resourceVersion")
                .and_then(serde_json::Value::as_str)
                .and_then(|v| v.parse::<u64>().ok())
        });
        events
    }

    /// Forgets all history, as an etcd compaction that also drops the watch cache: every open
    /// watch gets an `ERROR` event with code 410 (reason `Expired`) and ends; a later watch or
    /// exact list from an older resourceVersion, or a continue token from before, gets 410.
    pub fn compact(&self) {
        self.shared.write(|s| s.compact());
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().rv()
    }

    /// While down, every open connection (watch streams included) is closed and new
    /// connections are accepted and closed at once, without a response. Objects can still be
    /// changed; clients see the current state when the server is back up.
    pub fn set_down(&self, down: bool) {
        self.shared.down.send_replace(down);
    }

    /// Whether [`FakeKube::set_down`] took the server down.
    pub fn is_down(&self) -> bool {
        *self.shared.down.borrow()
    }

    /// How often watches opened from now on send BOOKMARK events (when the client allows
    /// them); `None`: only on [`FakeKube::send_bookmarks`].
    pub fn set_bookmark_interval(&self, interval: Option<Duration>) {
        *self
            .shared
            .bookmark_interval
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = interval;
    }

    /// Makes every open watch that allows bookmarks send one now, at the latest version.
    pub fn send_bookmarks(&self) {
        self.shared.bookmark_now.send_modify(|n| *n += 1);
    }

    /// Watch streams open now.
    pub fn open_watches(&self) -> u64 {
        self.shared.stats.open_watches.load(Ordering::Relaxed)
    }

    /// Counts of what was served so far.
    pub fn counters(&self) -> Counters {
        self.shared.stats.counters()
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.stats.requests()
    }
}

fn pod_key(namespace: &str, name: &str) -> crate::store::Key {
    (Kind::Pod, namespace.to_owned(), name.to_owned())
}
