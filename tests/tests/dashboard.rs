//! The Grafana dashboard (`deploy/grafana/infergate.json`) queries only metrics that exist: the
//! real gateway (in front of a simulator and a closed port, with a backend and its health feed
//! discovered through a fake Kubernetes API server, following the real `infergate-control` on
//! the fake NVML library) serves streamed and non-streamed requests, an ejection, a retry and a
//! reload, and every metric name in the dashboard's PromQL must be a series on one of the two
//! `/metrics` pages, with the suffix of its family's type.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use http::StatusCode;
use infergate_e2e::*;
use infergate_fake_kube::{FakeKube, FakePod};
use serde_json::Value;

const STREAM: &str =
    r#"{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":8,"stream":true}"#;
const PLAIN: &str =
    r#"{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":8}"#;

fn dashboard() -> Value {
    let path = repo_root().join("deploy/grafana/infergate.json");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Panels, those inside collapsed rows included.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

/// Every PromQL expression: panel targets and query variables.
fn expressions(d: &Value) -> Vec<String> {
    let mut out: Vec<String> = panels(d)
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    for v in d["templating"]["list"].as_array().unwrap() {
        if v["type"] == "query" {
            let q = &v["query"];
            out.push(q["query"].as_str().or(q.as_str()).unwrap().to_owned());
        }
    }
    out
}

/// The `infergate_*` identifiers of an expression, outside quoted strings.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut unquoted = String::new();
    let mut quote = None;
    for c in expr.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' || c == '`' => quote = Some(c),
            None => unquoted.push(c),
        }
    }
    for token in unquoted.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
        if token.starts_with("infergate_") {
            names.insert(token.to_owned());
        }
    }
    names
}

/// A `/metrics` page: the sample names, and each family's type.
#[derive(Default)]
struct Exported {
    samples: BTreeSet<String>,
    types: BTreeMap<String, String>,
}

impl Exported {
    fn add(&mut self, page: &str) {
        for line in page.lines() {
            if let Some(t) = line.strip_prefix("# TYPE ") {
                let (name, kind) = t.split_once(' ').unwrap();
                self.types.insert(name.to_owned(), kind.to_owned());
            } else if !line.starts_with('#') && !line.is_empty() {
                let end = line.find(['{', ' ']).unwrap();
                self.samples.insert(line[..end].to_owned());
            }
        }
    }

    /// Why `name` is not a series a query can select, if it is not.
    fn missing(&self, name: &str) -> Option<String> {
        if !self.samples.contains(name) {
            return Some(format!("{name}: no such series"));
        }
        let histogram_part = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|family| self.types.get(*family).is_some_and(|t| t == "histogram"));
        let family = histogram_part.unwrap_or(name);
        match self.types.get(family).map(String::as_str) {
            Some("histogram") if histogram_part.is_none() => Some(format!(
                "{name} is a histogram: query {name}_bucket, _sum or _count"
            )),
            Some(_) => None,
            None => Some(format!("{name}: no # TYPE for {family}")),
        }
    }
}

#[test]
fn the_dashboard_has_a_datasource_and_model_and_variant_variables() {
    let d = dashboard();
    assert!(d["schemaVersion"].as_u64().unwrap() >= 39);
    let vars = d["templating"]["list"].as_array().unwrap();
    let var = |name: &str| vars.iter().find(|v| v["name"] == name).unwrap();
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    for name in ["model", "variant"] {
        assert_eq!(var(name)["type"], "query");
        assert_eq!(var(name)["datasource"]["uid"], "${datasource}");
    }
    let mut ids = BTreeSet::new();
    for p in panels(&d) {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate panel id");
        for t in p["targets"].as_array().into_iter().flatten() {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        }
    }
    // TTFT and TPOT percentiles per model and variant, from the buckets.
    let exprs = expressions(&d);
    for m in [
        "infergate_time_to_first_token_seconds_bucket",
        "infergate_time_per_output_token_seconds_bucket",
    ] {
        for q in ["0.5", "0.95"] {
            let found = exprs.iter().any(|e| {
                e.starts_with(&format!(
                    "histogram_quantile({q}, sum by (model, variant, le)"
                )) && e.contains(m)
                    && e.contains("model=~\"$model\"")
                    && e.contains("variant=~\"$variant\"")
            });
            assert!(found, "no p{q} of {m} per model and variant");
        }
    }
}

async fn control_on_fake_nvml() -> (Proc, SocketAddr) {
    let dir = temp_path("dashboard-control");
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("scenario.yaml");
    // GPU 1 reports XID 79 one second in: a finding, and GPU states on the page.
    std::fs::write(
        &scenario,
        "devices: [{}, {}]\ntimeline:\n  - { at: 1s, gpu: 1, xid: 79 }\n",
    )
    .unwrap();
    let config = dir.join("control.yaml");
    std::fs::write(
        &config,
        "node: node-a\nlisten: 127.0.0.1:0\ngpu: { interval: 200ms, call_timeout: 1s }\nremediation: { mode: local }\n",
    )
    .unwrap();
    infergate_e2e::start_control(
        &config,
        &[("INFERGATE_FAKE_NVML_SCENARIO", scenario.as_path())],
    )
    .await
}

/// A fake Kubernetes API server with the model-server pod `models/vllm-0` at `server` and the
/// control pod `infergate-system/control-a` at `feed`, both on `node-a`; and its kubeconfig.
async fn cluster(server: SocketAddr, feed: SocketAddr) -> (FakeKube, String) {
    let kube = FakeKube::start().await.unwrap();
    let kubeconfig = temp_path("dashboard-kubeconfig");
    kube.write_kubeconfig(&kubeconfig).unwrap();
    kube.apply_pod(
        FakePod::new("models", "vllm-0")
            .label("app", "vllm")
            .node("node-a")
            .ip(server.ip().to_string())
            .named_port("http", server.port())
            .ready(true),
    );
    kube.apply_pod(
        FakePod::new("infergate-system", "control-a")
            .label("app", "infergate-control")
            .node("node-a")
            .ip(feed.ip().to_string())
            .port(feed.port())
            .ready(true),
    );
    (kube, kubeconfig.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn every_metric_the_dashboard_queries_is_exported() {
    let sim = Sim::start(&["--ttft-ms", "5", "--itl-ms", "2"]).await;
    let (_control, control) = control_on_fake_nvml().await;
    let (_kube, kubeconfig) = cluster(sim.addr, control).await;
    let closed = closed_port_url();
    // Backend `demo`: static endpoints (the simulator, and a closed port to eject). Backend
    // `pods`: discovered, the simulator as pod vllm-0. The health feed: the control pod of
    // node-a, found in the cluster.
    let config = format!(
        "listeners:\n  data: {{ address: \"127.0.0.1:0\" }}\n  admin: {{ address: \"127.0.0.1:0\" }}\n\
         health_feeds:\n  - kubernetes: {{ namespace: infergate-system, selector: {{ app: infergate-control }}, port: {} }}\n\
         backends:\n  - name: demo\n    endpoints:\n\
         \x20     - {{ url: \"{}\", labels: {{ node: node-a, gpus: \"0\" }} }}\n\
         \x20     - {{ url: \"{closed}\" }}\n\
         \x20   outlier: {{ consecutive_failures: 1 }}\n\
         \x20 - name: pods\n\
         \x20   discovery: {{ kubernetes: {{ namespace: models, selector: {{ app: vllm }}, port: http }} }}\n\
         models:\n  - {{ name: demo, backend: demo }}\n",
        control.port(),
        sim.url()
    );
    let gw = Gateway::start_with_env(&config, &[("KUBECONFIG", &kubeconfig)]).await;
    for source in ["pods", "health_feeds[0]"] {
        gw.wait_metric(
            "infergate_discovery_objects",
            &[("source", source)],
            1.0,
            Duration::from_secs(15),
        )
        .await;
    }

    // Streamed and plain requests until the closed endpoint was tried (a connect failure, a
    // retry on the simulator, an ejection).
    wait_until("no ejection", Duration::from_secs(20), || async {
        assert_eq!(
            post(gw.data, "/v1/chat/completions", STREAM).await.status,
            StatusCode::OK
        );
        assert_eq!(
            post(gw.data, "/v1/chat/completions", PLAIN).await.status,
            StatusCode::OK
        );
        gw.metric("infergate_endpoint_ejections_total", &[]).await >= 1.0
    })
    .await;
    gw.signal("HUP");
    gw.wait_metric(
        "infergate_config_reloads_total",
        &[],
        1.0,
        Duration::from_secs(10),
    )
    .await;
    wait_until("no GPU finding", Duration::from_secs(20), || async {
        metric_at(control, "infergate_control_findings_total", &[]).await >= 1.0
    })
    .await;

    let mut exported = Exported::default();
    exported.add(&gw.metrics().await);
    exported.add(&metrics_at(control).await);

    let used: BTreeSet<String> = expressions(&dashboard())
        .iter()
        .flat_map(|e| metric_names(e))
        .collect();
    assert!(used.len() >= 15, "{used:?}");
    let problems: Vec<String> = used.iter().filter_map(|n| exported.missing(n)).collect();
    assert!(
        problems.is_empty(),
        "{problems:#?}\nexported: {:?}",
        exported.samples
    );
}

#[test]
fn a_histogram_queried_without_its_suffix_is_reported() {
    let mut e = Exported::default();
    e.add("# TYPE infergate_x_seconds histogram\ninfergate_x_seconds_bucket{le=\"1\"} 1\ninfergate_x_seconds_sum 1\ninfergate_x_seconds_count 1\n# TYPE infergate_y_total counter\ninfergate_y_total{a=\"b\"} 2\n");
    assert_eq!(e.missing("infergate_x_seconds_bucket"), None);
    assert_eq!(e.missing("infergate_y_total"), None);
    assert!(e.missing("infergate_x_seconds").is_some());
    assert!(e.missing("infergate_z").is_some());
    assert_eq!(
        metric_names(
            r#"sum(rate(infergate_a_total{outcome!~"infergate_not|x"}[5m])) / infergate_b"#
        ),
        BTreeSet::from(["infergate_a_total".to_owned(), "infergate_b".to_owned()])
    );
}
