//! Endpoints and health feeds taken from the Kubernetes API instead of a static list: the
//! schema (`backends[].discovery`, `health_feeds[].kubernetes`) and its checks.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a backend's endpoints come from when they are not listed.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Discovery {
    /// Ready pods of a Kubernetes cluster.
    pub kubernetes: KubernetesDiscovery,
}

/// Pods chosen by a label selector, or by an InferencePool. An endpoint is a pod that is
/// Ready and not terminating, at `http://<podIP>:<port>`, with the pod's labels plus `node`
/// (the pod's node) and `pod` (`namespace/name`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesDiscovery {
    /// The pods' namespace (with `selector`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels every pod must have (matchLabels).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    /// The model server's port: a number, or the name of a container port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortRef>,
    /// Follow this `InferencePool` (`inference.networking.k8s.io/v1`) instead: its selector and
    /// target port, and their changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_pool: Option<ObjectRef>,
    /// Discovered endpoints wait until the health feed of their node reports their `model`
    /// label warm (see `endpoints[].require_warm`). Default `false`.
    #[serde(default)]
    pub require_warm: bool,
}

/// A port by number or by container port name.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(untagged)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

/// A namespaced object.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    pub namespace: String,
    pub name: String,
}

/// Health feeds of the `infergate-control` pods chosen by a selector: the gateway follows the
/// feed of each node that hosts one of its endpoints (`node` label), and only those.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeedDiscovery {
    pub namespace: String,
    /// Labels every control pod must have (matchLabels).
    pub selector: BTreeMap<String, String>,
    /// The feed's port on the control pod. Default `9200`.
    #[serde(default = "default_feed_port")]
    pub port: u16,
}

fn default_feed_port() -> u16 {
    9200
}

impl KubernetesDiscovery {
    /// Checks the fields; `push(path, reason)` for each problem.
    pub(crate) fn check(&self, path: &str, push: &mut impl FnMut(String, String)) {
        match &self.inference_pool {
            Some(pool) => {
                for (field, set) in [
                    ("namespace", self.namespace.is_some()),
                    ("selector", !self.selector.is_empty()),
                    ("port", self.port.is_some()),
                ] {
                    if set {
                        push(
                            format!("{path}.{field}"),
                            "comes from the InferencePool; remove it or remove inference_pool"
                                .into(),
                        );
                    }
                }
                check_name(
                    &format!("{path}.inference_pool.namespace"),
                    &pool.namespace,
                    push,
                );
                check_name(&format!("{path}.inference_pool.name"), &pool.name, push);
            }
            None => {
                match &self.namespace {
                    Some(ns) => check_name(&format!("{path}.namespace"), ns, push),
                    None => push(
                        format!("{path}.namespace"),
                        "is required (or use inference_pool)".into(),
                    ),
                }
                check_selector(&format!("{path}.selector"), &self.selector, push);
                match &self.port {
                    None => push(format!("{path}.port"), "is required (or use inference_pool)".into()),
                    Some(PortRef::Number(0)) => {
                        push(format!("{path}.port"), "must be 1 to 65535".into())
                    }
                    Some(PortRef::Name(n)) if !is_port_name(n) => push(
                        format!("{path}.port"),
                        format!("{n:?} is not a container port name (1-15 lowercase letters, digits and '-')"),
                    ),
                    Some(_) => {}
                }
            }
        }
    }
}

impl FeedDiscovery {
    pub(crate) fn check(&self, path: &str, push: &mut impl FnMut(String, String)) {
        check_name(&format!("{path}.namespace"), &self.namespace, push);
        check_selector(&format!("{path}.selector"), &self.selector, push);
        if self.port == 0 {
            push(format!("{path}.port"), "must be 1 to 65535".into());
        }
    }
}

/// A label selector's text (`a=b,c=d`) for the API's `labelSelector` parameter.
pub fn selector_text(selector: &BTreeMap<String, String>) -> String {
    let mut s = String::new();
    for (k, v) in selector {
        if !s.is_empty() {
            s.push(',');
        }
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s
}

/// A namespace or object name: a DNS subdomain (lowercase letters, digits, '-' and '.').
fn check_name(path: &str, name: &str, push: &mut impl FnMut(String, String)) {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        && !name.starts_with(['-', '.'])
        && !name.ends_with(['-', '.']);
    if !ok {
        push(
            path.to_owned(),
            format!("{name:?} is not a Kubernetes name (lowercase letters, digits, '-' and '.')"),
        );
    }
}

fn check_selector(
    path: &str,
    selector: &BTreeMap<String, String>,
    push: &mut impl FnMut(String, String),
) {
    if selector.is_empty() {
        push(
            path.to_owned(),
            "needs at least one label: an empty selector would take every pod of the namespace"
                .into(),
        );
    }
    for (k, v) in selector {
        if !is_label_key(k) {
            push(format!("{path}.{k}"), format!("{k:?} is not a label key"));
        }
        if !is_label_value(v) {
            push(
                format!("{path}.{k}"),
                format!("{v:?} is not a label value (at most 63 letters, digits, '-', '_' or '.')"),
            );
        }
    }
}

/// `[prefix/]name`: a DNS subdomain prefix, and a name of at most 63 characters.
fn is_label_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
    });
    prefix_ok && !name.is_empty() && is_label_value(name)
}

fn is_label_value(v: &str) -> bool {
    v.len() <= 63
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
        && v.bytes().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && v.bytes().last().is_none_or(|c| c.is_ascii_alphanumeric())
}

fn is_port_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 15
        && n.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && n.bytes().any(|c| c.is_ascii_lowercase())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn problems(d: &KubernetesDiscovery) -> Vec<String> {
        let mut out = Vec::new();
        d.check("backends[0].discovery.kubernetes", &mut |p, r| {
            out.push(format!("{p}: {r}"))
        });
        out
    }

    #[test]
    fn selector_and_port_or_a_pool() {
        let ok = KubernetesDiscovery {
            namespace: Some("models".into()),
            selector: [("app".to_string(), "vllm".to_string())].into(),
            port: Some(PortRef::Name("http".into())),
            ..Default::default()
        };
        assert!(problems(&ok).is_empty());
        let pool = KubernetesDiscovery {
            inference_pool: Some(ObjectRef {
                namespace: "models".into(),
                name: "llama".into(),
            }),
            ..Default::default()
        };
        assert!(problems(&pool).is_empty());
        let both = KubernetesDiscovery {
            port: Some(PortRef::Number(8000)),
            ..pool
        };
        assert_eq!(
            problems(&both),
            ["backends[0].discovery.kubernetes.port: comes from the InferencePool; remove it or remove inference_pool"]
        );
        let p = problems(&KubernetesDiscovery::default());
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains(".namespace: is required"));
        assert!(p[1].contains(".selector: needs at least one label"));
        assert!(p[2].contains(".port: is required"));
    }

    #[test]
    fn names_labels_and_ports_are_checked() {
        let bad = KubernetesDiscovery {
            namespace: Some("Models".into()),
            selector: [
                ("app".to_string(), "a b".to_string()),
                ("-x".to_string(), "v".to_string()),
                ("example.com/model".to_string(), "llama-3".to_string()),
            ]
            .into(),
            port: Some(PortRef::Name("HTTP".into())),
            ..Default::default()
        };
        let p = problems(&bad);
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p
            .iter()
            .any(|m| m.contains("\"Models\" is not a Kubernetes name")));
        assert!(p.iter().any(|m| m.contains("\"a b\" is not a label value")));
        assert!(p.iter().any(|m| m.contains("\"-x\" is not a label key")));
        assert!(p
            .iter()
            .any(|m| m.contains("\"HTTP\" is not a container port name")));
    }

    #[test]
    fn selector_text_joins_sorted_pairs() {
        let s: BTreeMap<String, String> = [
            ("model".into(), "llama".into()),
            ("app".into(), "vllm".into()),
        ]
        .into();
        assert_eq!(selector_text(&s), "app=vllm,model=llama");
    }

    #[test]
    fn port_reads_as_number_or_name() {
        let n: PortRef = serde_yaml_ng::from_str("8000").unwrap();
        assert_eq!(n, PortRef::Number(8000));
        let s: PortRef = serde_yaml_ng::from_str("http").unwrap();
        assert_eq!(s, PortRef::Name("http".into()));
    }
}
