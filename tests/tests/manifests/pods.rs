//! The pods against their configs: the gateways' listeners, token, grace period, feeds and
//! discovery; the sidecar's engine and node feed; the control's feed port, pod-resources socket
//! and remediation settings.

use std::collections::BTreeSet;

use infergate_remediate::RemediationConfig;
use serde_json::{json, Value};

use super::*;

/// The gateway container of `w`, its pod spec and its config.
fn gateway_of<'a>(docs: &'a [Value], w: &'a Value) -> (&'a Value, Value) {
    let c = pod_containers(w)
        .find(|c| s(c, "/image").starts_with(IMAGE))
        .unwrap();
    let args = arr(c, "/args");
    assert_eq!(args[0], "run");
    let i = args.iter().position(|a| a == "--config").unwrap();
    (c, yaml(config_file(docs, w, c, s(&args[i + 1], ""))))
}

/// What every gateway pod must agree with in its config: ports, token, grace period.
fn check_gateway_pod(docs: &[Value], w: &Value) -> Value {
    let (c, cfg) = gateway_of(docs, w);
    let port = |name: &str| {
        container_port(w, name).unwrap()["containerPort"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        port_of(s(&cfg, "/listeners/data/address")),
        port("http"),
        "{}",
        id(w)
    );
    assert_eq!(
        port_of(s(&cfg, "/listeners/admin/address")),
        port("admin"),
        "{}",
        id(w)
    );
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(
            c[probe]["httpGet"],
            json!({"path": path, "port": "admin"}),
            "{}",
            id(w)
        );
    }
    let token = s(&cfg, "/listeners/admin/token_env");
    assert!(arr(c, "/env")
        .iter()
        .any(|e| e["name"] == token && e.pointer("/valueFrom/secretKeyRef").is_some()));
    // Grace: the preStop sleep, the drain, and at least 5 s more.
    let drain = s(&cfg, "/shutdown/drain_timeout");
    let drain: u64 = drain.strip_suffix('s').unwrap().parse().unwrap();
    let sleep = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap();
    let grace = w["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    assert!(
        grace >= sleep + drain + 5,
        "{}: grace {grace} vs {sleep} + {drain}",
        id(w)
    );
    cfg
}

#[test]
fn the_ingress_gateway_agrees_with_its_config_and_the_control_pods() {
    let docs = objects("ingress");
    let w = find(
        docs,
        "Deployment",
        Some("infergate-system"),
        "infergate-gateway",
    );
    let cfg = check_gateway_pod(docs, w);
    assert!(!arr(w, "/spec/template/spec/topologySpreadConstraints").is_empty());
    // The feeds follow the control DaemonSet's pods on their feed port.
    let ds = find(objects("control"), "DaemonSet", None, "infergate-control");
    for f in arr(&cfg, "/health_feeds") {
        let k = &f["kubernetes"];
        assert_eq!(k["namespace"], ds["metadata"]["namespace"]);
        assert!(selects(k["selector"].as_object().unwrap(), ds));
        assert_eq!(
            container_port(ds, "http").unwrap()["containerPort"],
            k["port"]
        );
    }
    assert_eq!(arr(&cfg, "/health_feeds").len(), 1);
    // The discovery selector finds the example model servers (sidecar overlay) on their port.
    for b in arr(&cfg, "/backends") {
        let k = &b["discovery"]["kubernetes"];
        let servers: Vec<&Value> = workloads(objects("sidecar"))
            .filter(|m| m["metadata"]["namespace"] == k["namespace"])
            .filter(|m| selects(k["selector"].as_object().unwrap(), m))
            .collect();
        assert_eq!(servers.len(), 1, "{b}");
        assert!(
            container_port(servers[0], &k["port"].to_string()).is_some(),
            "{b}"
        );
    }
}

#[test]
fn the_sidecar_routes_to_its_engine_and_follows_its_node_feed() {
    let docs = objects("sidecar");
    let w = find(docs, "Deployment", Some("models"), "vllm-llama");
    let cfg = check_gateway_pod(docs, w);
    let sidecar = arr(w, "/spec/template/spec/initContainers")
        .iter()
        .find(|c| s(c, "/image").starts_with(IMAGE))
        .expect("infergate as an init container");
    assert_eq!(sidecar["restartPolicy"], "Always", "a native sidecar");
    let engine = &w["spec"]["template"]["spec"]["containers"][0];
    assert!(s(engine, "/image").starts_with("vllm/vllm-openai:"));
    assert_eq!(engine["resources"]["limits"]["nvidia.com/gpu"], 1);
    let engine_port = engine["ports"][0]["containerPort"].as_u64().unwrap();
    let eps = arr(&cfg, "/backends/0/endpoints");
    assert_eq!(eps.len(), 1);
    assert_eq!(
        s(&eps[0], "/url"),
        format!("http://127.0.0.1:{engine_port}")
    );
    // The feed of the control pod on this node, at its hostPort.
    let ds = find(objects("control"), "DaemonSet", None, "infergate-control");
    let host_port = container_port(ds, "http").unwrap()["hostPort"]
        .as_u64()
        .unwrap();
    assert_eq!(
        s(&cfg, "/health_feeds/0/url"),
        format!("http://${{HOST_IP}}:{host_port}/v1/health")
    );
    // Every ${VAR} of the config is in the sidecar's environment (downward API).
    let text = config_file(docs, w, sidecar, "/etc/infergate/gateway.yaml");
    let env: BTreeSet<&str> = arr(sidecar, "/env").iter().map(|e| s(e, "/name")).collect();
    let vars: Vec<&str> = text
        .split("${")
        .skip(1)
        .map(|r| r.split('}').next().unwrap())
        .collect();
    assert!(vars.contains(&"HOST_IP") && vars.contains(&"NODE_NAME"));
    for v in vars {
        assert!(
            env.contains(v),
            "${{{v}}} is not in the sidecar's env {env:?}"
        );
    }
    for (var, field) in [
        ("HOST_IP", "status.hostIP"),
        ("POD_IP", "status.podIP"),
        ("NODE_NAME", "spec.nodeName"),
    ] {
        let e = arr(sidecar, "/env")
            .iter()
            .find(|e| e["name"] == var)
            .unwrap();
        assert_eq!(s(e, "/valueFrom/fieldRef/fieldPath"), field);
    }
    // The Service reaches the sidecar, never the engine directly.
    let svc = find(docs, "Service", Some("models"), "vllm-llama");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
    assert!(arr(sidecar, "/ports").iter().any(|p| p["name"] == "http"));
    // The control remediates it: it carries the model-server label.
    let rc = RemediationConfig::default();
    let (k, v) = rc.model_server_selector.split_once('=').unwrap();
    assert_eq!(w["spec"]["template"]["metadata"]["labels"][k], v);
}

#[test]
fn the_control_daemonset_agrees_with_its_config() {
    let docs = objects("control");
    let ds = find(docs, "DaemonSet", None, "infergate-control");
    let ns = s(ds, "/metadata/namespace");
    let pod = &ds["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let args = arr(c, "/args");
    assert_eq!(args[0], "run");
    let cfg = yaml(config_file(docs, ds, c, s(&args[2], "")));
    // The node name from the downward API; the feed port is the one control listens on.
    let node = arr(c, "/env")
        .iter()
        .find(|e| e["name"] == "NODE_NAME")
        .unwrap();
    assert_eq!(s(node, "/valueFrom/fieldRef/fieldPath"), "spec.nodeName");
    assert_eq!(
        c["livenessProbe"]["httpGet"],
        json!({"path": "/v1/health", "port": "http"})
    );
    let port = container_port(ds, "http").unwrap();
    assert_eq!(
        port_of(s(&cfg, "/listen")),
        port["containerPort"].as_u64().unwrap()
    );
    assert_eq!(port["hostPort"], port["containerPort"]);
    // NVML: the NVIDIA runtime class, or a hostPath volume for the library.
    assert!(pod.get("runtimeClassName").is_some());
    // The pod-resources socket lies in a read-only hostPath mount of the kubelet's directory.
    let socket = s(&cfg, "/pod_resources/socket");
    let mount = arr(c, "/volumeMounts")
        .iter()
        .find(|m| socket.starts_with(&format!("{}/", s(m, "/mountPath"))))
        .expect("the pod-resources directory is mounted");
    assert_eq!(mount["readOnly"], true);
    let volume = arr(pod, "/volumes")
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert_eq!(volume["hostPath"]["path"], mount["mountPath"]);
    assert_eq!(s(mount, "/mountPath"), "/var/lib/kubelet/pod-resources");
    // The remediation section is a valid RemediationConfig that matches the manifests.
    let mut remediation = cfg["remediation"].clone();
    assert_eq!(remediation["mode"], "kubernetes");
    remediation.as_object_mut().unwrap().remove("mode");
    let rc: RemediationConfig = serde_json::from_value(remediation).unwrap();
    rc.validate().unwrap();
    assert_eq!(rc.namespace, ns);
    find(
        docs,
        "Role",
        Some(&rc.namespace),
        "infergate-control-leases",
    );
    // Spelled out in the ConfigMap for operators to see; they must be the defaults.
    assert_eq!(rc, RemediationConfig::default());
    // The pod stays on the nodes it taints, and runs on the nodes the breaker counts.
    let tolerates = arr(pod, "/tolerations")
        .iter()
        .any(|t| t["key"] == rc.taint_key.as_str() && t["operator"] == "Exists");
    assert!(tolerates, "the DaemonSet must tolerate {}", rc.taint_key);
    let (key, value) = rc.gpu_node_selector.split_once('=').unwrap();
    assert_eq!(pod["nodeSelector"][key], value);
}
