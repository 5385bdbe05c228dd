//! The configs in the ConfigMaps, read by the binaries' own loaders: every `gateway.yaml` with
//! `infergate_config::Config::from_yaml_env`, `control.yaml` with
//! `infergate_control::config::ControlConfig::from_yaml_env`, each with the environment of the
//! container that mounts it (downward-API fields given plausible values). A `${VAR}` that the
//! container does not declare, an unknown field or a bad value fails here.

use std::collections::BTreeMap;

use infergate_config::Config;
use infergate_control::config::ControlConfig;
use serde_json::Value;

use super::*;

/// A plausible value of a downward-API field of a pod of workload `w`.
fn field_value(w: &Value, path: &str) -> String {
    let ns = s(w, "/metadata/namespace");
    match path {
        "metadata.name" => format!("{}-7d9c5b6f4-x2x8q", s(w, "/metadata/name")),
        "metadata.namespace" => ns.to_owned(),
        "spec.nodeName" => "gpu-node-1".to_owned(),
        "spec.serviceAccountName" => s(w, "/spec/template/spec/serviceAccountName").to_owned(),
        "status.podIP" | "status.podIPs" => "10.244.3.17".to_owned(),
        "status.hostIP" | "status.hostIPs" => "192.168.10.5".to_owned(),
        other => panic!("{}: no plausible value for fieldRef {other}", id(w)),
    }
}

/// The environment container `c` of `w` declares, with plausible values.
fn environment(w: &Value, c: &Value) -> BTreeMap<String, String> {
    assert!(
        c.get("envFrom").is_none(),
        "{}: envFrom hides the variable names",
        id(w)
    );
    arr(c, "/env")
        .iter()
        .map(|e| {
            let value = if let Some(v) = e["value"].as_str() {
                v.to_owned()
            } else if let Some(path) = e.pointer("/valueFrom/fieldRef/fieldPath") {
                field_value(w, path.as_str().unwrap())
            } else if e.pointer("/valueFrom/secretKeyRef").is_some() {
                "secret-from-the-cluster".to_owned()
            } else {
                panic!("{}: no plausible value for env {e}", id(w))
            };
            (s(e, "/name").to_owned(), value)
        })
        .collect()
}

/// The variables `text` refers to (`${NAME}` or `${NAME:-default}`; `$${` is a literal).
fn references(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        let literal = at > 0 && rest.as_bytes()[at - 1] == b'$';
        let body = &rest[at + 2..];
        let end = body
            .find('}')
            .unwrap_or_else(|| panic!("unclosed ${{ in {body}"));
        if !literal {
            let inner = &body[..end];
            out.push(inner.split_once(":-").map_or(inner, |(name, _)| name));
        }
        rest = &body[end..];
    }
    out
}

/// Which loader reads the config of container `c`: `infergate-control`'s or the gateway's.
fn is_control(c: &Value) -> bool {
    arr(c, "/command")
        .first()
        .is_some_and(|b| b.as_str().unwrap().ends_with("/infergate-control"))
}

/// Every container with `--config`: its workload, itself, and the config's text.
fn configs() -> Vec<(&'static Value, &'static Value, &'static str)> {
    let mut out = Vec::new();
    for docs in overlays().values() {
        for w in workloads(docs) {
            for c in pod_containers(w) {
                if let Some(i) = arr(c, "/args").iter().position(|a| a == "--config") {
                    let path = s(c, &format!("/args/{}", i + 1));
                    out.push((w, c, config_file(docs, w, c, path)));
                }
            }
        }
    }
    out
}

#[test]
fn every_config_loads_with_the_environment_of_its_container() {
    let (mut gateways, mut controls) = (0, 0);
    for (w, c, text) in configs() {
        let env = environment(w, c);
        for var in references(text) {
            assert!(
                env.contains_key(var),
                "{}: the config uses ${{{var}}}, not in the container's env {:?}",
                id(w),
                env.keys()
            );
        }
        let lookup = |name: &str| env.get(name).cloned();
        if is_control(c) {
            ControlConfig::from_yaml_env(text, &lookup)
                .unwrap_or_else(|e| panic!("{}: control.yaml: {e}", id(w)));
            controls += 1;
        } else {
            let cfg = Config::from_yaml_env(text, &lookup)
                .unwrap_or_else(|e| panic!("{}: gateway.yaml: {e}", id(w)));
            // A static endpoint's labels name its node and pod as discovery would.
            for e in cfg.backends.iter().flat_map(|b| &b.endpoints) {
                assert_eq!(e.labels.get("node"), Some("gpu-node-1"), "{}", id(w));
                let pod = format!("{}/{}", env["POD_NAMESPACE"], env["POD_NAME"]);
                assert_eq!(e.labels.get("pod"), Some(pod.as_str()), "{}", id(w));
            }
            gateways += 1;
        }
    }
    // The ingress gateway, the sidecar, and the control.
    assert_eq!((gateways, controls), (2, 1));
}

#[test]
fn the_loaders_reject_an_unknown_field_and_a_bad_value() {
    for (w, c, text) in configs() {
        let env = environment(w, c);
        let lookup = |name: &str| env.get(name).cloned();
        let unknown = format!("{text}\nno_such_field: 1\n");
        let bad = text.replacen("listen: \"0.0.0.0:9200\"", "listen: [9200]", 1);
        let bad = bad.replacen("drain_timeout: 30s", "drain_timeout: soon", 1);
        assert_ne!(bad, text, "{}: nothing to spoil", id(w));
        for spoiled in [unknown, bad] {
            let failed = if is_control(c) {
                ControlConfig::from_yaml_env(&spoiled, &lookup).is_err()
            } else {
                Config::from_yaml_env(&spoiled, &lookup).is_err()
            };
            assert!(failed, "{}: accepted\n{spoiled}", id(w));
        }
    }
}

#[test]
fn references_are_found_with_defaults_and_literals() {
    assert_eq!(
        references("a: ${A}\nb: \"${B:-x}:${C}\"\nc: $${D}\n"),
        ["A", "B", "C"]
    );
    assert!(references("plain: $HOME").is_empty());
}
