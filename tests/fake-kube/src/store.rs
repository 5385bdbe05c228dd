//! The object store: current objects, the change history behind watches, and the
//! resourceVersion counter shared by every object.

use std::collections::{BTreeMap, VecDeque};

use serde_json::Value;

use crate::kind::Kind;

/// Changes kept for watches and consistent lists; older ones are forgotten as if etcd had
/// compacted them.
const HISTORY_LIMIT: usize = 10_000;

/// Identifies an object: its kind, namespace and name.
pub(crate) type Key = (Kind, String, String);

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One write to the store, as watches replay it.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub rv: u64,
    pub key: Key,
    pub ty: EventType,
    /// The object before the change (`None` for a creation).
    pub prev: Option<Value>,
    /// The object after the change; for a deletion, its last state at the deletion's version.
    pub object: Value,
}

/// A test control named an object that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {namespace}/{name} does not exist in the fake API server")]
pub struct Missing {
    /// The object's kind (`Pod`, `InferencePool`).
    pub kind: &'static str,
    /// The namespace asked for.
    pub namespace: String,
    /// The name asked for.
    pub name: String,
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Change>,
    /// Every change after this version is in `history`.
    compacted_rv: u64,
    /// Bumped by [`Store::compact`]; a watch opened in an older epoch is expired.
    epoch: u64,
    next_uid: u64,
}

impl Store {
    /// The latest resourceVersion handed out.
    pub(crate) fn rv(&self) -> u64 {
        self.rv
    }

    pub(crate) fn compacted_rv(&self) -> u64 {
        self.compacted_rv
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    pub(crate) fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Creates or replaces an object. `build` receives the creationTimestamp (kept from the
    /// existing object) and returns the body; uid, creationTimestamp, generation and a
    /// pending deletion carry over. Writing an identical object changes nothing and returns
    /// the current version, like a no-op update on a real server.
    pub(crate) fn apply(&mut self, key: Key, now: &str, build: impl FnOnce(&str) -> Value) -> u64 {
        let prev = self.objects.get(&key).cloned();
        let created = prev
            .as_ref()
            .and_then(|p| p.pointer("/metadata/creationTimestamp"))
            .and_then(Value::as_str)
            .unwrap_or(now)
            .to_owned();
        let mut obj = build(&created);
        let uid = match prev.as_ref().and_then(|p| p.pointer("/metadata/uid")) {
            Some(uid) => uid.clone(),
            None => Value::String(self.new_uid()),
        };
        let generation = match &prev {
            None => 1,
            Some(p) => {
                let old = p
                    .pointer("/metadata/generation")
                    .and_then(Value::as_u64)
                    .unwrap_or(1);
                if p.get("spec") == obj.get("spec") {
                    old
                } else {
                    old + 1
                }
            }
        };
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("uid".into(), uid);
            meta.insert("creationTimestamp".into(), Value::String(created));
            if key.0.has_generation() {
                meta.insert("generation".into(), Value::from(generation));
            }
            for kept in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
                if let Some(v) = prev
                    .as_ref()
                    .and_then(|p| p.get("metadata"))
                    .and_then(|m| m.get(kept))
                {
                    meta.insert(kept.into(), v.clone());
                }
            }
        }
        if let Some(p) = &prev {
            let mut unversioned = p.clone();
            set_rv(&mut unversioned, None);
            if unversioned == obj {
                return self.rv;
            }
        }
        let ty = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.commit(key, ty, prev, obj)
    }

    /// Changes an existing object in place.
    pub(crate) fn update(
        &mut self,
        key: Key,
        change: impl FnOnce(&mut Value),
    ) -> Result<u64, Missing> {
        let Some(prev) = self.objects.get(&key).cloned() else {
            return Err(missing(&key));
        };
        let mut obj = prev.clone();
        change(&mut obj);
        if obj == prev {
            return Ok(self.rv);
        }
        Ok(self.commit(key, EventType::Modified, Some(prev), obj))
    }

    /// Removes an object; watches see its last state at the deletion's version.
    pub(crate) fn delete(&mut self, key: Key) -> Result<u64, Missing> {
        let Some(prev) = self.objects.get(&key).cloned() else {
            return Err(missing(&key));
        };
        Ok(self.commit(key, EventType::Deleted, Some(prev.clone()), prev))
    }

    /// Forgets all history: lists and watches from any version before now get 410 Gone, and
    /// open watches are expired.
    pub(crate) fn compact(&mut self) {
        self.history.clear();
        self.compacted_rv = self.rv;
        self.epoch += 1;
    }

    /// Changes after `rv`, oldest first.
    pub(crate) fn changes_after(&self, rv: u64) -> impl Iterator<Item = &Change> {
        let start = self.history.partition_point(|c| c.rv <= rv);
        self.history.range(start..)
    }

    /// The objects of `kind` (in `namespace`, or all) as they were at version `at`, which must
    /// be at least [`Store::compacted_rv`]; ordered by namespace and name.
    pub(crate) fn snapshot(&self, kind: Kind, namespace: Option<&str>, at: u64) -> Vec<Value> {
        let wanted = |key: &Key| key.0 == kind && namespace.is_none_or(|ns| key.1 == ns);
        let mut view: BTreeMap<&Key, &Value> =
            self.objects.iter().filter(|(k, _)| wanted(k)).collect();
        for change in self.history.iter().rev().take_while(|c| c.rv > at) {
            if !wanted(&change.key) {
                continue;
            }
            match &change.prev {
                Some(prev) => view.insert(&change.key, prev),
                None => view.remove(&change.key),
            };
        }
        view.into_values().cloned().collect()
    }

    fn commit(&mut self, key: Key, ty: EventType, prev: Option<Value>, mut obj: Value) -> u64 {
        self.rv += 1;
        set_rv(&mut obj, Some(self.rv));
        if ty == EventType::Deleted {
            self.objects.remove(&key);
        } else {
            self.objects.insert(key.clone(), obj.clone());
        }
        self.history.push_back(Change {
            rv: self.rv,
            key,
            ty,
            prev,
            object: obj,
        });
        while self.history.len() > HISTORY_LIMIT {
            if let Some(old) = self.history.pop_front() {
                self.compacted_rv = old.rv;
            }
        }
        self.rv
    }

    fn new_uid(&mut self) -> String {
        self.next_uid += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.next_uid)
    }
}

fn set_rv(obj: &mut Value, rv: Option<u64>) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        match rv {
            Some(rv) => meta.insert("resourceVersion".into(), Value::String(rv.to_string())),
            None => meta.remove("resourceVersion"),
        };
    }
}

fn missing(key: &Key) -> Missing {
    Missing {
        kind: key.0.kind(),
        namespace: key.1.clone(),
        name: key.2.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(name: &str) -> Key {
        (Kind::Pod, "ns".into(), name.into())
    }

    fn body(name: &str, v: u32) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns"}, "spec": {"v": v}})
    }

    #[test]
    fn versions_grow_and_identical_writes_are_no_ops() {
        let mut s = Store::default();
        assert_eq!(s.apply(key("a"), "t", |_| body("a", 1)), 1);
        assert_eq!(s.apply(key("b"), "t", |_| body("b", 1)), 2);
        assert_eq!(s.apply(key("a"), "t", |_| body("a", 1)), 2);
        assert_eq!(s.apply(key("a"), "t", |_| body("a", 2)), 3);
        let a = s.get(&key("a")).unwrap();
        assert_eq!(a["metadata"]["resourceVersion"], "3");
        assert_eq!(a["metadata"]["uid"], "00000000-0000-4000-8000-000000000001");
        assert_eq!(s.delete(key("a")).unwrap(), 4);
        assert!(s.delete(key("a")).is_err());
        let types: Vec<_> = s.changes_after(1).map(|c| c.ty).collect();
        assert_eq!(
            types,
            [EventType::Added, EventType::Modified, EventType::Deleted]
        );
    }

    #[test]
    fn snapshots_undo_later_changes() {
        let mut s = Store::default();
        s.apply(key("a"), "t", |_| body("a", 1));
        s.apply(key("b"), "t", |_| body("b", 1));
        s.apply(key("a"), "t", |_| body("a", 2));
        s.delete(key("b")).unwrap();
        let names = |at| -> Vec<(String, Value)> {
            s.snapshot(Kind::Pod, Some("ns"), at)
                .into_iter()
                .map(|o| {
                    (
                        o["metadata"]["name"].as_str().unwrap().to_owned(),
                        o["spec"]["v"].clone(),
                    )
                })
                .collect()
        };
        assert_eq!(names(2), [("a".into(), json!(1)), ("b".into(), json!(1))]);
        assert_eq!(names(4), [("a".into(), json!(2))]);
        assert!(s.snapshot(Kind::InferencePool, None, 4).is_empty());
        s.compact();
        assert_eq!(s.compacted_rv(), 4);
        assert_eq!(s.changes_after(0).count(), 0);
    }
}
