//! Offline validation of `deploy/k8s/*.yaml`: every document parses, has a known kind and
//! apiVersion and its required fields; the RBAC grants exactly what remediation uses; the
//! DaemonSet's ServiceAccount, ConfigMap and config agree with the rest.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use infergate_remediate::RemediationConfig;
use serde::Deserialize;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/k8s")
}

/// (file, document) for every YAML document under deploy/k8s.
fn documents() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut docs = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for (i, de) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let doc = Value::deserialize(de)
                .unwrap_or_else(|e| panic!("{name}: document {i} does not parse: {e}"));
            if !doc.is_null() {
                docs.push((name.clone(), doc));
            }
        }
    }
    docs
}

fn s<'a>(v: &'a Value, path: &str) -> &'a str {
    v.pointer(path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("missing string {path} in {v}"))
}

fn find<'a>(docs: &'a [(String, Value)], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter()
        .map(|(_, d)| d)
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

fn all<'a>(docs: &'a [(String, Value)], kind: &'a str) -> impl Iterator<Item = &'a Value> {
    docs.iter()
        .map(|(_, d)| d)
        .filter(move |d| d["kind"] == kind)
}

/// Known kinds: apiVersion, namespaced, required top-level fields.
const KINDS: &[(&str, &str, bool, &[&str])] = &[
    ("Namespace", "v1", false, &[]),
    ("ServiceAccount", "v1", true, &[]),
    ("ConfigMap", "v1", true, &["/data"]),
    (
        "ClusterRole",
        "rbac.authorization.k8s.io/v1",
        false,
        &["/rules"],
    ),
    (
        "ClusterRoleBinding",
        "rbac.authorization.k8s.io/v1",
        false,
        &["/roleRef", "/subjects"],
    ),
    ("Role", "rbac.authorization.k8s.io/v1", true, &["/rules"]),
    (
        "RoleBinding",
        "rbac.authorization.k8s.io/v1",
        true,
        &["/roleRef", "/subjects"],
    ),
    (
        "DaemonSet",
        "apps/v1",
        true,
        &[
            "/spec/selector",
            "/spec/template/metadata/labels",
            "/spec/template/spec/containers",
        ],
    ),
    (
        "Deployment",
        "apps/v1",
        true,
        &["/spec/selector", "/spec/template"],
    ),
    ("Service", "v1", true, &["/spec"]),
];

#[test]
fn every_document_has_a_known_kind_and_its_required_fields() {
    let docs = documents();
    for (file, d) in &docs {
        let kind = s(d, "/kind");
        let Some((_, api, namespaced, required)) = KINDS.iter().find(|k| k.0 == kind) else {
            panic!("{file}: unknown kind {kind}");
        };
        assert_eq!(s(d, "/apiVersion"), *api, "{file}: {kind}");
        assert!(
            !s(d, "/metadata/name").is_empty(),
            "{file}: {kind} without a name"
        );
        assert_eq!(
            d.pointer("/metadata/namespace").is_some(),
            *namespaced,
            "{file}: {kind} {} namespace",
            s(d, "/metadata/name")
        );
        for field in *required {
            assert!(d.pointer(field).is_some(), "{file}: {kind} lacks {field}");
        }
        // Namespaced objects live in a namespace these files create, or `default`.
        if *namespaced {
            let ns = s(d, "/metadata/namespace");
            assert!(
                ns == "default" || find(&docs, "Namespace", ns).is_some(),
                "{file}: namespace {ns} is not created here"
            );
        }
    }
}

/// (apiGroup, resource, verb) triples of a role.
fn grants(role: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        for field in ["apiGroups", "resources", "verbs"] {
            for v in rule[field].as_array().unwrap() {
                assert_ne!(
                    v, "*",
                    "wildcard in {field} of {}",
                    role["metadata"]["name"]
                );
            }
        }
        assert!(rule.get("nonResourceURLs").is_none());
        for g in rule["apiGroups"].as_array().unwrap() {
            for r in rule["resources"].as_array().unwrap() {
                for v in rule["verbs"].as_array().unwrap() {
                    out.insert((
                        g.as_str().unwrap().to_owned(),
                        r.as_str().unwrap().to_owned(),
                        v.as_str().unwrap().to_owned(),
                    ));
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

#[test]
fn rbac_grants_exactly_what_remediation_uses() {
    let docs = documents();
    let cluster_role = find(&docs, "ClusterRole", "infergate-control").expect("ClusterRole");
    assert_eq!(
        grants(cluster_role),
        triples(&[
            ("", "nodes", "get"),
            ("", "nodes", "list"),
            ("", "nodes", "patch"),
            ("", "nodes/status", "patch"),
            ("", "pods", "list"),
            ("", "pods", "delete"),
            ("", "pods/eviction", "create"),
        ])
    );
    let leases = find(&docs, "Role", "infergate-control-leases").expect("leases Role");
    assert_eq!(s(leases, "/metadata/namespace"), "infergate-system");
    assert_eq!(
        grants(leases),
        triples(&[
            ("coordination.k8s.io", "leases", "get"),
            ("coordination.k8s.io", "leases", "create"),
            ("coordination.k8s.io", "leases", "update"),
        ])
    );
    let events = find(&docs, "Role", "infergate-control-events").expect("events Role");
    assert_eq!(
        s(events, "/metadata/namespace"),
        infergate_remediate::EVENT_NAMESPACE
    );
    assert_eq!(grants(events), triples(&[("", "events", "create")]));
    // Nothing else grants anything.
    assert_eq!(all(&docs, "ClusterRole").count(), 1);
    assert_eq!(all(&docs, "Role").count(), 2);
    for kind in ["ClusterRole", "Role"] {
        for role in all(&docs, kind) {
            grants(role); // no wildcard anywhere
        }
    }
}

#[test]
fn bindings_tie_existing_roles_to_the_existing_service_account() {
    let docs = documents();
    let mut bound = BTreeSet::new();
    for kind in ["ClusterRoleBinding", "RoleBinding"] {
        for b in all(&docs, kind) {
            let role_kind = s(b, "/roleRef/kind");
            let role_name = s(b, "/roleRef/name");
            assert_eq!(s(b, "/roleRef/apiGroup"), "rbac.authorization.k8s.io");
            let role = find(&docs, role_kind, role_name).unwrap_or_else(|| {
                panic!(
                    "{kind} {} binds missing {role_kind} {role_name}",
                    b["metadata"]["name"]
                )
            });
            if role_kind == "Role" {
                assert_eq!(role["metadata"]["namespace"], b["metadata"]["namespace"]);
            }
            for subject in b["subjects"].as_array().unwrap() {
                assert_eq!(s(subject, "/kind"), "ServiceAccount");
                let sa =
                    find(&docs, "ServiceAccount", s(subject, "/name")).expect("ServiceAccount");
                assert_eq!(sa["metadata"]["namespace"], subject["namespace"]);
            }
            bound.insert(format!("{role_kind}/{role_name}"));
        }
    }
    assert_eq!(
        bound,
        BTreeSet::from([
            "ClusterRole/infergate-control".to_owned(),
            "Role/infergate-control-events".to_owned(),
            "Role/infergate-control-leases".to_owned(),
        ])
    );
}

/// The remediation section of the ConfigMap's control.yaml, as the control process reads it.
fn control_yaml(docs: &[(String, Value)], ns: &str, name: &str) -> Value {
    let cm = find(docs, "ConfigMap", name).expect("ConfigMap");
    assert_eq!(s(cm, "/metadata/namespace"), ns);
    serde_yaml_ng::from_str(s(cm, "/data/control.yaml")).expect("control.yaml parses")
}

#[test]
fn daemonset_references_what_exists_and_agrees_with_its_config() {
    let docs = documents();
    let ds = find(&docs, "DaemonSet", "infergate-control").expect("DaemonSet");
    let ns = s(ds, "/metadata/namespace");
    let pod = &ds["spec"]["template"]["spec"];

    // Selector matches the template.
    for (k, v) in ds["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&ds["spec"]["template"]["metadata"]["labels"][k], v);
    }

    // ServiceAccount in the same namespace.
    let sa = find(&docs, "ServiceAccount", s(pod, "/serviceAccountName")).expect("ServiceAccount");
    assert_eq!(s(sa, "/metadata/namespace"), ns);

    // The config volume is the ConfigMap, mounted where --config points.
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v.get("configMap").is_some())
        .expect("a configMap volume");
    let cm_name = s(volume, "/configMap/name");
    let cfg = control_yaml(&docs, ns, cm_name);
    let container = &pod["containers"][0];
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume["name"])
        .expect("the config volume is mounted");
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let config_arg = args
        .iter()
        .position(|a| *a == "--config")
        .map(|i| args[i + 1])
        .expect("--config");
    assert_eq!(args[0], "run");
    assert_eq!(
        config_arg,
        format!(
            "{}/{}",
            s(mount, "/mountPath"),
            s(volume, "/configMap/items/0/path")
        )
    );
    assert_eq!(s(volume, "/configMap/items/0/key"), "control.yaml");

    // The node name from the downward API.
    let env = container["env"].as_array().unwrap();
    let node_name = env
        .iter()
        .find(|e| e["name"] == "NODE_NAME")
        .expect("NODE_NAME");
    assert_eq!(
        s(node_name, "/valueFrom/fieldRef/fieldPath"),
        "spec.nodeName"
    );

    // Liveness on /v1/health, on the port the config listens on.
    let port = &container["ports"][0];
    assert_eq!(s(container, "/livenessProbe/httpGet/path"), "/v1/health");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], port["name"]);
    let listen = s(&cfg, "/listen");
    assert!(
        listen.ends_with(&format!(":{}", port["containerPort"])),
        "{listen} vs {port}"
    );

    // NVML: the NVIDIA runtime class, or a hostPath volume for the library.
    let hostpath = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v.get("hostPath").is_some());
    assert!(pod.get("runtimeClassName").is_some() || hostpath);

    // The remediation section is a valid RemediationConfig that matches the manifests.
    let mut remediation = cfg["remediation"].clone();
    assert_eq!(remediation["mode"], "kubernetes");
    remediation.as_object_mut().unwrap().remove("mode");
    let rc: RemediationConfig = serde_json::from_value(remediation).expect("remediation section");
    rc.validate().unwrap();
    assert_eq!(rc.namespace, ns);
    let leases = find(&docs, "Role", "infergate-control-leases").unwrap();
    assert_eq!(s(leases, "/metadata/namespace"), rc.namespace);
    // The pod stays on the nodes it taints, and runs on the nodes the breaker counts.
    let tolerates = pod["tolerations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["key"] == rc.taint_key.as_str() && t["operator"] == "Exists");
    assert!(tolerates, "the DaemonSet must tolerate {}", rc.taint_key);
    let (key, value) = rc.gpu_node_selector.split_once('=').unwrap();
    assert_eq!(pod["nodeSelector"][key], value);
}

#[test]
fn the_configmap_defaults_match_the_code() {
    // Spelled out in the ConfigMap for operators to see; they must be the defaults.
    let docs = documents();
    let cfg = control_yaml(&docs, "infergate-system", "infergate-control");
    let mut remediation = cfg["remediation"].clone();
    remediation.as_object_mut().unwrap().remove("mode");
    let rc: RemediationConfig = serde_json::from_value(remediation).unwrap();
    assert_eq!(rc, RemediationConfig::default());
}
