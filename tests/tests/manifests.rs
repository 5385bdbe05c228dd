//! Offline validation of `deploy/k8s`. Every overlay is built with `kubectl kustomize` and each
//! object is checked against the Kubernetes OpenAPI schema by `kubernetes-validate --strict`
//! (PyPI; `scripts/test` installs it in `.venv`). Objects of CRDs that it has no schema for
//! (PodMonitor) are checked here. Then what no schema knows: the RBAC grants exactly the API
//! calls the code makes, names agree across objects (service accounts, ConfigMaps, selectors and
//! labels, ports, PDB and HPA targets), the configs in the ConfigMaps load with the binaries' own
//! loaders in their containers' environment, and they agree with the objects.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{json, Value};

#[path = "manifests/configs.rs"]
mod configs;
#[path = "manifests/pods.rs"]
mod pods;
#[path = "manifests/rbac.rs"]
mod rbac;

/// Every overlay under deploy/k8s (`base` is part of each).
const OVERLAYS: &[&str] = &["control", "ingress", "sidecar", "monitoring"];
/// The Kubernetes release the objects are validated against.
const KUBERNETES_VERSION: &str = "1.33.0";
const IMAGE: &str = "ghcr.io/infergate/infergate:";
/// Secrets the overlays use but do not create (docs/kubernetes.md says how to create them).
const EXTERNAL_SECRETS: &[(&str, &str)] = &[
    ("infergate-system", "infergate-admin"),
    ("models", "infergate-admin"),
    ("models", "hf-token"),
];

fn repo() -> PathBuf {
    infergate_e2e::repo_root()
}

fn kubectl_kustomize(overlay: &str) -> String {
    let dir = repo().join("deploy/k8s").join(overlay);
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run kubectl ({e}): install it (Debian package kubernetes-client)")
        });
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The objects of every overlay, built once.
fn overlays() -> &'static BTreeMap<&'static str, Vec<Value>> {
    static BUILT: OnceLock<BTreeMap<&'static str, Vec<Value>>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut all = BTreeMap::new();
        for overlay in OVERLAYS {
            let text = kubectl_kustomize(overlay);
            let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&text)
                .map(|de| Value::deserialize(de).unwrap())
                .filter(|d| !d.is_null())
                .collect();
            assert!(!docs.is_empty(), "{overlay}: no objects");
            all.insert(*overlay, docs);
        }
        all
    })
}

fn objects(overlay: &str) -> &'static [Value] {
    &overlays()[overlay]
}

fn s<'a>(v: &'a Value, path: &str) -> &'a str {
    v.pointer(path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("missing string {path} in {v}"))
}

fn arr<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    v.pointer(path).and_then(Value::as_array).map_or(&[], |a| a)
}

fn id(o: &Value) -> String {
    format!(
        "{} {}/{}",
        s(o, "/kind"),
        o["metadata"]["namespace"].as_str().unwrap_or("-"),
        s(o, "/metadata/name")
    )
}

fn find<'a>(docs: &'a [Value], kind: &str, ns: Option<&str>, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| {
            d["kind"] == kind
                && d["metadata"]["name"] == name
                && ns.is_none_or(|ns| d["metadata"]["namespace"] == ns)
        })
        .unwrap_or_else(|| panic!("no {kind} {ns:?}/{name}"))
}

fn all<'a>(docs: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> {
    docs.iter().filter(move |d| d["kind"] == kind)
}

fn workloads(docs: &[Value]) -> impl Iterator<Item = &Value> {
    docs.iter()
        .filter(|d| matches!(d["kind"].as_str(), Some("Deployment" | "DaemonSet")))
}

fn is_crd_object(o: &Value) -> bool {
    s(o, "/apiVersion").starts_with("monitoring.coreos.com/")
}

/// `kubernetes-validate` from the virtual environment of `$PYTHON`, else the repository's .venv.
fn kubernetes_validate() -> PathBuf {
    let candidates: Vec<PathBuf> = std::env::var_os("PYTHON")
        .map(PathBuf::from)
        .and_then(|p| p.parent().map(|d| d.join("kubernetes-validate")))
        .into_iter()
        .chain([repo().join(".venv/bin/kubernetes-validate")])
        .collect();
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "kubernetes-validate not found at {candidates:?}: run scripts/test, or \
             .venv/bin/pip install kubernetes-validate"
            )
        })
}

#[test]
fn every_object_validates_against_the_kubernetes_schema() {
    let validate = kubernetes_validate();
    for (overlay, docs) in overlays() {
        let known: Vec<&Value> = docs.iter().filter(|d| !is_crd_object(d)).collect();
        if known.is_empty() {
            continue;
        }
        let mut input = String::new();
        for d in &known {
            input.push_str("---\n");
            input.push_str(&serde_yaml_ng::to_string(d).unwrap());
        }
        let mut child = Command::new(&validate)
            .args(["--strict", "--kubernetes-version", KUBERNETES_VERSION, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", validate.display()));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{overlay}: {report}");
        // Each object passed: none was skipped for lack of a schema.
        let passed = report.lines().filter(|l| l.contains(" passed ")).count();
        assert_eq!(passed, known.len(), "{overlay}: {report}");
    }
}

#[test]
fn podmonitors_scrape_a_named_port_of_every_infergate_pod() {
    let monitors: Vec<&Value> = overlays()
        .values()
        .flatten()
        .filter(|o| is_crd_object(o))
        .collect();
    assert!(!monitors.is_empty());
    let pods: Vec<&Value> = overlays().values().flat_map(|d| workloads(d)).collect();
    let mut covered = BTreeSet::new();
    for m in &monitors {
        assert_eq!(s(m, "/apiVersion"), "monitoring.coreos.com/v1", "{}", id(m));
        assert_eq!(s(m, "/kind"), "PodMonitor");
        let ns = s(m, "/metadata/namespace");
        let spec = m["spec"].as_object().unwrap();
        let unknown: Vec<&String> = spec
            .keys()
            .filter(|k| !["selector", "podMetricsEndpoints"].contains(&k.as_str()))
            .collect();
        assert!(unknown.is_empty(), "{}: unknown fields {unknown:?}", id(m));
        let selector = m["spec"]["selector"]["matchLabels"].as_object().unwrap();
        assert!(!selector.is_empty());
        let targets: Vec<&&Value> = pods
            .iter()
            .filter(|w| w["metadata"]["namespace"] == ns && selects(selector, w))
            .collect();
        assert!(!targets.is_empty(), "{} selects no pod", id(m));
        let endpoints = arr(m, "/spec/podMetricsEndpoints");
        assert!(!endpoints.is_empty());
        for e in endpoints {
            for k in e.as_object().unwrap().keys() {
                assert!(
                    ["port", "path", "interval"].contains(&k.as_str()),
                    "{}: {k}",
                    id(m)
                );
            }
            assert_eq!(s(e, "/path"), "/metrics");
            for w in &targets {
                assert!(
                    container_port(w, s(e, "/port")).is_some(),
                    "{}: {} has no port {}",
                    id(m),
                    id(w),
                    e["port"]
                );
            }
        }
        covered.extend(targets.iter().map(|w| id(w)));
    }
    // Every pod that runs infergate is scraped.
    for w in &pods {
        if pod_containers(w).any(|c| s(c, "/image").starts_with(IMAGE)) {
            assert!(covered.contains(&id(w)), "no PodMonitor for {}", id(w));
        }
    }
}

/// Whether `matchLabels` selects the pods of workload `w`.
fn selects(match_labels: &serde_json::Map<String, Value>, w: &Value) -> bool {
    let labels = &w["spec"]["template"]["metadata"]["labels"];
    match_labels.iter().all(|(k, v)| &labels[k] == v)
}

/// Containers and init containers of a workload's pod.
fn pod_containers(w: &Value) -> impl Iterator<Item = &Value> {
    arr(w, "/spec/template/spec/containers")
        .iter()
        .chain(arr(w, "/spec/template/spec/initContainers"))
}

/// The container port named `name` (or numbered) in the pod of `w`.
fn container_port<'a>(w: &'a Value, name: &str) -> Option<&'a Value> {
    pod_containers(w)
        .flat_map(|c| arr(c, "/ports"))
        .find(|p| p["name"] == name || name.parse::<u64>().is_ok_and(|n| p["containerPort"] == n))
}

#[test]
fn workloads_reference_what_exists() {
    for (overlay, docs) in overlays() {
        // Namespaced objects live in a namespace that an overlay creates, or `default`.
        let namespaces: BTreeSet<&str> = overlays()
            .values()
            .flat_map(|d| all(d, "Namespace"))
            .map(|n| s(n, "/metadata/name"))
            .collect();
        for o in docs {
            if let Some(ns) = o["metadata"]["namespace"].as_str() {
                assert!(
                    ns == "default" || namespaces.contains(ns),
                    "{overlay}: {} outside the namespaces created",
                    id(o)
                );
            }
        }
        for w in workloads(docs) {
            let ns = s(w, "/metadata/namespace");
            let pod = &w["spec"]["template"]["spec"];
            let selector = w["spec"]["selector"]["matchLabels"].as_object().unwrap();
            assert!(selects(selector, w), "{}: selector vs labels", id(w));
            match pod["serviceAccountName"].as_str() {
                Some(sa) => {
                    find(docs, "ServiceAccount", Some(ns), sa);
                }
                None => assert_eq!(pod["automountServiceAccountToken"], false, "{}", id(w)),
            }
            for v in arr(pod, "/volumes") {
                if let Some(cm) = v["configMap"]["name"].as_str() {
                    find(docs, "ConfigMap", Some(ns), cm);
                }
            }
            for c in pod_containers(w) {
                for e in arr(c, "/env") {
                    if let Some(name) = e
                        .pointer("/valueFrom/secretKeyRef/name")
                        .and_then(Value::as_str)
                    {
                        assert!(
                            EXTERNAL_SECRETS.contains(&(ns, name)),
                            "{}: Secret {name}",
                            id(w)
                        );
                    }
                }
                for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                    if let Some(port) = c[probe]["httpGet"]["port"].as_str() {
                        assert!(
                            arr(c, "/ports").iter().any(|p| p["name"] == port),
                            "{}: {probe} port {port}",
                            id(w)
                        );
                    }
                }
                if let Some(i) = arr(c, "/args").iter().position(|a| a == "--config") {
                    let path = s(c, &format!("/args/{}", i + 1));
                    config_file(docs, w, c, path);
                }
            }
        }
        for svc in all(docs, "Service") {
            let ns = s(svc, "/metadata/namespace");
            let selector = svc["spec"]["selector"].as_object().unwrap();
            let targets: Vec<&Value> = workloads(docs)
                .filter(|w| w["metadata"]["namespace"] == ns && selects(selector, w))
                .collect();
            assert_eq!(targets.len(), 1, "{}", id(svc));
            for p in arr(svc, "/spec/ports") {
                let target = p["targetPort"]
                    .as_str()
                    .map_or_else(|| p["targetPort"].to_string(), str::to_owned);
                assert!(
                    container_port(targets[0], &target).is_some(),
                    "{}: targetPort {target}",
                    id(svc)
                );
            }
        }
        for pdb in all(docs, "PodDisruptionBudget") {
            let ns = s(pdb, "/metadata/namespace");
            let selector = pdb["spec"]["selector"]["matchLabels"].as_object().unwrap();
            let n = workloads(docs)
                .filter(|w| w["metadata"]["namespace"] == ns && selects(selector, w))
                .count();
            assert_eq!(n, 1, "{}", id(pdb));
        }
        for hpa in all(docs, "HorizontalPodAutoscaler") {
            let target = &hpa["spec"]["scaleTargetRef"];
            let d = find(
                docs,
                s(target, "/kind"),
                Some(s(hpa, "/metadata/namespace")),
                s(target, "/name"),
            );
            assert_eq!(target["apiVersion"], d["apiVersion"]);
            assert!(hpa["spec"]["minReplicas"].as_u64().unwrap() >= 2);
            assert!(d["spec"]["replicas"].as_u64().unwrap() >= 2);
            // CPU utilisation needs a CPU request on every container.
            for c in pod_containers(d) {
                assert!(c.pointer("/resources/requests/cpu").is_some(), "{}", id(d));
            }
        }
    }
}

/// The ConfigMap file at `path` in container `c` of `w`: mounted as a directory (no subPath, so
/// updates reach it), the key present. Returns its text.
fn config_file<'a>(docs: &'a [Value], w: &Value, c: &Value, path: &str) -> &'a str {
    let (dir, file) = path.rsplit_once('/').unwrap();
    let mount = arr(c, "/volumeMounts")
        .iter()
        .find(|m| m["mountPath"] == dir)
        .unwrap_or_else(|| panic!("{}: nothing mounted at {dir}", id(w)));
    assert!(mount.get("subPath").is_none(), "{}: subPath", id(w));
    assert_eq!(mount["readOnly"], true);
    let volume = arr(w, "/spec/template/spec/volumes")
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    let cm = find(
        docs,
        "ConfigMap",
        w["metadata"]["namespace"].as_str(),
        s(volume, "/configMap/name"),
    );
    let key = match arr(volume, "/configMap/items")
        .iter()
        .find(|i| i["path"] == file)
    {
        Some(item) => s(item, "/key").to_owned(),
        None => file.to_owned(),
    };
    s(cm, &format!("/data/{key}"))
}

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap()
}

/// gateway.yaml of the ConfigMap `ns/name`.
fn gateway_config(docs: &[Value], ns: &str, name: &str) -> Value {
    yaml(s(
        find(docs, "ConfigMap", Some(ns), name),
        "/data/gateway.yaml",
    ))
}

/// The port of an `IP:PORT` address.
fn port_of(address: &str) -> u64 {
    address.rsplit_once(':').unwrap().1.parse().unwrap()
}

#[test]
fn infergate_containers_are_locked_down() {
    for docs in overlays().values() {
        for w in workloads(docs) {
            let pod = &w["spec"]["template"]["spec"];
            for c in pod_containers(w).filter(|c| s(c, "/image").starts_with(IMAGE)) {
                let sc = &c["securityContext"];
                assert_eq!(sc["readOnlyRootFilesystem"], true, "{}", id(w));
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{}", id(w));
                assert_eq!(sc["capabilities"], json!({"drop": ["ALL"]}), "{}", id(w));
                let seccomp = sc["seccompProfile"]["type"]
                    .as_str()
                    .or(pod["securityContext"]["seccompProfile"]["type"].as_str());
                assert_eq!(seccomp, Some("RuntimeDefault"), "{}", id(w));
                let non_root = sc["runAsNonRoot"]
                    .as_bool()
                    .or(pod["securityContext"]["runAsNonRoot"].as_bool());
                // Only the control runs as UID 0 (without capabilities): the kubelet's
                // pod-resources socket admits root only.
                let control = s(w, "/metadata/name") == "infergate-control";
                assert_eq!(non_root, Some(!control), "{}", id(w));
            }
        }
    }
}

#[test]
fn the_image_builds_the_binaries_the_manifests_run() {
    let dockerfile = std::fs::read_to_string(repo().join("deploy/docker/Dockerfile")).unwrap();
    for (crate_dir, bin) in [("gateway", "infergate"), ("control", "infergate-control")] {
        let manifest = std::fs::read_to_string(repo().join(crate_dir).join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("[[bin]]\nname = \"{bin}\"")),
            "{crate_dir}: {bin}"
        );
        assert!(
            dockerfile.contains(&format!("--bin {bin} "))
                || dockerfile.contains(&format!("--bin {bin}\n"))
        );
    }
    assert!(dockerfile.contains("--locked") && dockerfile.contains("--release"));
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/infergate\"]"));
    let ds = find(objects("control"), "DaemonSet", None, "infergate-control");
    assert_eq!(
        ds["spec"]["template"]["spec"]["containers"][0]["command"],
        json!(["/usr/local/bin/infergate-control"])
    );
}
