//! RBAC: each service account is granted exactly the API calls its code makes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::*;

/// (apiGroup, resource, verb) triples of a role; no wildcard, no non-resource URL.
fn grants(role: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in arr(role, "/rules") {
        assert!(rule.get("nonResourceURLs").is_none(), "{}", id(role));
        assert!(rule.get("resourceNames").is_none(), "{}", id(role));
        for g in arr(rule, "/apiGroups") {
            for r in arr(rule, "/resources") {
                for v in arr(rule, "/verbs") {
                    for x in [g, r, v] {
                        assert_ne!(x, "*", "wildcard in {}", id(role));
                    }
                    let t = |x: &Value| x.as_str().unwrap().to_owned();
                    out.insert((t(g), t(r), t(v)));
                }
            }
        }
    }
    out
}

fn triples(list: &[(&str, &str, &str)]) -> BTreeSet<(String, String, String)> {
    list.iter()
        .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
        .collect()
}

/// The Role (in the binding's namespace) or ClusterRole a binding refers to.
fn role_of<'a>(docs: &'a [Value], binding: &Value) -> &'a Value {
    let kind = s(binding, "/roleRef/kind");
    let ns = match kind {
        "Role" => binding["metadata"]["namespace"].as_str(),
        _ => None,
    };
    find(docs, kind, ns, s(binding, "/roleRef/name"))
}

/// The grants of every role bound to `ns/sa`, by role (`Kind ns/name`).
fn bound_grants(
    docs: &[Value],
    ns: &str,
    sa: &str,
) -> BTreeMap<String, BTreeSet<(String, String, String)>> {
    let mut out = BTreeMap::new();
    for kind in ["ClusterRoleBinding", "RoleBinding"] {
        for b in all(docs, kind) {
            let to_sa = arr(b, "/subjects")
                .iter()
                .any(|x| x["kind"] == "ServiceAccount" && x["name"] == sa && x["namespace"] == ns);
            if !to_sa {
                continue;
            }
            assert_eq!(s(b, "/roleRef/apiGroup"), "rbac.authorization.k8s.io");
            let role = role_of(docs, b);
            out.insert(id(role), grants(role));
        }
    }
    out
}

#[test]
fn control_rbac_grants_exactly_what_remediation_and_releases_use() {
    // The calls of control/remediate/src/kube/ (docs/remediation.md, "RBAC"), and of the
    // releases' ConfigMaps (docs/release.md).
    let docs = objects("control");
    let got = bound_grants(docs, "infergate-system", "infergate-control");
    let want = BTreeMap::from([
        (
            "ClusterRole -/infergate-control".to_owned(),
            triples(&[
                ("", "nodes", "get"),
                ("", "nodes", "list"),
                ("", "nodes", "patch"),
                ("", "nodes/status", "patch"),
                ("", "pods", "list"),
                ("", "pods", "delete"),
                ("", "pods/eviction", "create"),
            ]),
        ),
        (
            "Role infergate-system/infergate-control-leases".to_owned(),
            triples(&[
                ("coordination.k8s.io", "leases", "get"),
                ("coordination.k8s.io", "leases", "create"),
                ("coordination.k8s.io", "leases", "update"),
            ]),
        ),
        (
            // control/src/releases/configmaps.rs and watch.rs: get_opt, create, replace,
            // delete, and the watcher's list and watch.
            "Role infergate-system/infergate-control-releases".to_owned(),
            triples(&[
                ("", "configmaps", "get"),
                ("", "configmaps", "list"),
                ("", "configmaps", "watch"),
                ("", "configmaps", "create"),
                ("", "configmaps", "update"),
                ("", "configmaps", "delete"),
            ]),
        ),
        (
            format!(
                "Role {}/infergate-control-events",
                infergate_remediate::EVENT_NAMESPACE
            ),
            triples(&[("", "events", "create")]),
        ),
    ]);
    assert_eq!(got, want);
}

#[test]
fn gateway_rbac_grants_exactly_what_discovery_uses() {
    let docs = objects("ingress");
    let cfg = gateway_config(docs, "infergate-system", "infergate-gateway");
    let read = |g: &str, r: &str| {
        ["get", "list", "watch"].map(|v| (g.to_owned(), r.to_owned(), v.to_owned()))
    };
    let mut want: BTreeMap<String, BTreeSet<_>> = BTreeMap::new();
    // Pods (and InferencePools) in each discovery namespace; control pods in the feeds'.
    for b in arr(&cfg, "/backends") {
        let k = &b["discovery"]["kubernetes"];
        let ns = k["namespace"]
            .as_str()
            .or(k["inference_pool"]["namespace"].as_str())
            .unwrap();
        let e = want
            .entry(format!("Role {ns}/infergate-gateway-discovery"))
            .or_default();
        e.extend(read("", "pods"));
        e.extend(read("inference.networking.k8s.io", "inferencepools"));
    }
    for f in arr(&cfg, "/health_feeds") {
        let ns = s(f, "/kubernetes/namespace");
        want.entry(format!("Role {ns}/infergate-gateway-feeds"))
            .or_default()
            .extend(read("", "pods"));
    }
    assert_eq!(want.len(), 2, "{want:?}");
    assert_eq!(
        bound_grants(docs, "infergate-system", "infergate-gateway"),
        want
    );
    // Nothing else in the gateway's overlays grants anything.
    for overlay in ["ingress", "sidecar"] {
        for kind in ["ClusterRole", "ClusterRoleBinding"] {
            assert_eq!(all(objects(overlay), kind).count(), 0, "{overlay}: {kind}");
        }
    }
    assert_eq!(all(objects("ingress"), "Role").count(), 2);
    assert_eq!(all(objects("sidecar"), "Role").count(), 0);
}

#[test]
fn every_binding_ties_an_existing_role_to_an_existing_service_account() {
    for (overlay, docs) in overlays() {
        for kind in ["ClusterRoleBinding", "RoleBinding"] {
            for b in all(docs, kind) {
                role_of(docs, b);
                for x in arr(b, "/subjects") {
                    assert_eq!(s(x, "/kind"), "ServiceAccount", "{overlay}: {}", id(b));
                    find(
                        docs,
                        "ServiceAccount",
                        Some(s(x, "/namespace")),
                        s(x, "/name"),
                    );
                }
            }
        }
    }
}
