//! Endpoint labels: a small map kept as one sorted slice of pairs. Endpoints carry two or three
//! labels (`node`, `gpus`, `model`); a `BTreeMap` would spend a 540-byte node on each, which is
//! 5 MB per copy of a 10,000-endpoint config.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Labels of an endpoint, sorted by key, each key once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Labels(Box<[(Box<str>, Box<str>)]>);

impl Labels {
    /// The value of label `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_ref().cmp(key))
            .ok()
            .map(|i| self.0[i].1.as_ref())
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_ref())
    }

    /// The pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Labels {
    /// Later pairs replace earlier ones with the same key, as in a map.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let map: BTreeMap<String, String> = iter
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Labels(
            map.into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str()))
                .collect(),
        )
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.iter() {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BTreeMap::<String, String>::deserialize(d).map(Labels::from_iter)
    }
}

impl JsonSchema for Labels {
    fn schema_name() -> Cow<'static, str> {
        "Labels".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        BTreeMap::<String, String>::json_schema(g)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn behaves_as_a_sorted_map() {
        let l: Labels = [("node", "n1"), ("gpus", "0,1"), ("node", "n2")]
            .into_iter()
            .collect();
        assert_eq!(l.len(), 2);
        assert_eq!(l.get("node"), Some("n2"));
        assert_eq!(l.get("gpus"), Some("0,1"));
        assert_eq!(l.get("model"), None);
        assert_eq!(l.keys().collect::<Vec<_>>(), ["gpus", "node"]);
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(json, r#"{"gpus":"0,1","node":"n2"}"#);
        let back: Labels = serde_json::from_str(&json).unwrap();
        assert_eq!(back, l);
        assert!(Labels::default().is_empty());
    }
}
