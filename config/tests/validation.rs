#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use infergate_config::{Config, LoadError};

const GOOD: &str = r#"
listeners:
  data: { address: "127.0.0.1:9100" }
  admin: { address: "127.0.0.1:9190" }
backends:
  - name: llama-v1
    endpoints: [{ url: "http://10.0.0.1:8000", labels: { node: n1, gpus: "0,1" } }]
  - name: llama-v2
    endpoints: [{ url: "http://10.0.0.2:8000" }]
models:
  - { name: llama, backend: llama-v1 }
  - { name: llama-next, backend: llama-v2 }
"#;

fn errors(yaml: &str) -> Vec<String> {
    match Config::from_yaml(yaml) {
        Ok(_) => panic!("config should be invalid"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

/// Each of `expected` begins one of `errs`, and `errs` has no others.
fn assert_errors(errs: &[String], expected: &[&str]) {
    for want in expected {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "missing {want:?} in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), expected.len(), "{errs:#?}");
}

#[test]
fn valid_config_parses_with_defaults() {
    let cfg = Config::from_yaml(GOOD).unwrap();
    assert_eq!(cfg.backends.len(), 2);
    assert_eq!(cfg.backends[0].endpoints[0].labels.get("gpus"), Some("0,1"));
    assert_eq!(cfg.backends[0].timeouts.connect.to_string(), "5s");
    assert_eq!(cfg.backends[0].timeouts.total.to_string(), "15m");
    assert_eq!(cfg.limits.max_body_bytes.get(), 8 << 20);
}

#[test]
fn unknown_backend_names_the_known_ones() {
    let yaml = GOOD.replace("backend: llama-v2 }", "backend: llama-v3 }");
    assert_eq!(
        errors(&yaml),
        vec![r#"models[1].backend: unknown backend "llama-v3" (known: llama-v1, llama-v2)"#]
    );
}

#[test]
fn unknown_field_is_an_error_with_its_path() {
    let yaml = GOOD.replace(
        "{ url: \"http://10.0.0.2:8000\" }",
        "{ url: \"http://10.0.0.2:8000\", weight: 3 }",
    );
    let errs = errors(&yaml);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with(
            "backends[1].endpoints[0].weight: unknown field `weight`, expected one of `url`, `labels`, `require_warm`"
        ),
        "{errs:?}"
    );
    assert!(errs[0].contains("line "), "{errs:?}");
}

#[test]
fn wrong_type_has_its_path() {
    let yaml = GOOD.replace(
        "admin: { address: \"127.0.0.1:9190\" }",
        "admin: { address: \"127.0.0.1:9190\" }\nlimits: { max_body_bytes: lots }",
    );
    let errs = errors(&yaml);
    assert!(
        errs[0].starts_with("limits.max_body_bytes: size \"lots\""),
        "{errs:?}"
    );
}

#[test]
fn every_semantic_error_is_reported() {
    let yaml = r#"
listeners:
  data: { address: "localhost" }
  admin: { address: "127.0.0.1:9190" }
backends:
  - name: a
    endpoints: [{ url: "10.0.0.1:8000" }, { url: "ftp://x" }]
    timeouts: { first_token: 10m, total: 1m, connect: 0s }
  - name: a
    endpoints: []
    limits: { max_in_flight_per_endpoint: 0 }
models:
  - { name: m, backend: b }
  - { name: m, backend: a }
"#;
    let expected = [
        "listeners.data.address: \"localhost\" is not an IP:PORT address",
        "backends[0].endpoints[0].url: \"10.0.0.1:8000\"",
        "backends[0].endpoints[1].url: \"ftp://x\": unsupported scheme \"ftp\"",
        "backends[0].timeouts.connect: must be greater than 0",
        "backends[0].timeouts.first_token: 10m is longer than total (1m)",
        "backends[1].name: duplicate backend name \"a\"",
        "backends[1].endpoints: at least one endpoint is required",
        "backends[1].limits.max_in_flight_per_endpoint: must be at least 1",
        "models[0].backend: unknown backend \"b\" (known: a, a)",
        "models[1].name: duplicate model name \"m\"",
    ];
    assert_errors(&errors(yaml), &expected);
}

#[test]
fn load_distinguishes_unreadable_from_invalid() {
    let missing = std::path::Path::new("/nonexistent/infergate.yaml");
    assert!(matches!(Config::load(missing), Err(LoadError::Read { .. })));
    let dir = std::env::temp_dir().join(format!("infergate-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "listeners: [").unwrap();
    assert!(matches!(Config::load(&bad), Err(LoadError::Invalid { .. })));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shipped_examples_are_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 1);
}

#[test]
fn json_schema_describes_the_config() {
    let schema = infergate_config::json_schema();
    let text = schema.to_string();
    assert!(text.contains("\"listeners\""));
    assert!(text.contains("max_in_flight_per_endpoint"));
    assert!(text.contains("additionalProperties"));
}

#[test]
fn resilience_settings_are_checked() {
    let yaml = GOOD
        .replace(
            "endpoints: [{ url: \"http://10.0.0.2:8000\" }]",
            "endpoints: [{ url: \"https://10.0.0.2:8443\" }]\n    retry: { max_attempts: 0, on_status: [200, 503] }\n    outlier: { max_ejected_percent: 150, base_ejection: 10m, max_ejection: 1m }\n    tls: { cert_file: /c.pem }",
        )
        .replace(
            "admin: { address: \"127.0.0.1:9190\" }",
            "admin: { address: \"127.0.0.1:9190\", token: short, token_env: X }\nretry_budget: { ratio: 1.5 }\nlimits: { max_headers: 0, max_header_bytes: 100 }\nshutdown: { drain_timeout: 0s }",
        );
    let expected = [
        "listeners.admin.token_env: set either token or token_env, not both",
        "listeners.admin.token: must be at least 16 characters",
        "limits.max_header_bytes: must be at least 1KiB",
        "limits.max_headers: must be greater than 0",
        "shutdown.drain_timeout: must be greater than 0",
        "retry_budget.ratio: 1.5 is not a fraction between 0 and 1",
        "backends[1].retry.max_attempts: 0 is not between 1 and 10",
        "backends[1].retry.on_status[0]: 200 is not an error status",
        "backends[1].outlier.max_ejected_percent: 150 is more than 100",
        "backends[1].outlier.base_ejection: 10m is longer than max_ejection (1m)",
        "backends[1].tls: cert_file and key_file go together",
    ];
    assert_errors(&errors(&yaml), &expected);
}

#[test]
fn secrets_are_never_printed() {
    let yaml = GOOD.replace(
        "admin: { address: \"127.0.0.1:9190\" }",
        "admin: { address: \"127.0.0.1:9190\", token: \"0123456789abcdef-secret\" }",
    );
    let cfg = Config::from_yaml(&yaml).unwrap();
    let json = serde_json::to_string(&cfg).unwrap();
    assert!(json.contains("\"token\":\"***\""), "{json}");
    assert!(!format!("{cfg:?}").contains("secret"));
}

#[test]
fn client_limits_must_be_positive() {
    let yaml = r#"
listeners:
  data: { address: "127.0.0.1:9100" }
  admin: { address: "127.0.0.1:9190" }
limits: { body_read_timeout: 0s, header_read_timeout: 0s, max_in_flight: 0 }
backends:
  - name: a
    endpoints: [{ url: "http://127.0.0.1:8000" }]
models:
  - { name: m, backend: a }
"#;
    assert_errors(
        &errors(yaml),
        &[
            "limits.header_read_timeout: must be greater than 0",
            "limits.body_read_timeout: must be greater than 0",
            "limits.max_in_flight: must be greater than 0",
        ],
    );
}

const DISCOVERY: &str = r#"
listeners:
  data: { address: "127.0.0.1:9100" }
  admin: { address: "127.0.0.1:9190" }
health_feeds:
  - kubernetes: { namespace: infergate-system, selector: { app.kubernetes.io/name: infergate-control } }
backends:
  - name: llama
    discovery:
      kubernetes: { namespace: models, selector: { app: vllm, model: llama }, port: 8000 }
  - name: qwen
    discovery:
      kubernetes: { inference_pool: { namespace: models, name: qwen } }
models:
  - name: llama
    variants:
      - { name: v1, backend: llama, selector: { version: v1 } }
    routes: [{ split: [{ variant: v1, weight: 1 }] }]
  - { name: qwen, backend: qwen }
"#;

#[test]
fn discovery_backends_and_feeds_parse() {
    let cfg = Config::from_yaml(DISCOVERY).unwrap();
    let k = &cfg.backends[0].discovery.as_ref().unwrap().kubernetes;
    assert_eq!(k.namespace.as_deref(), Some("models"));
    assert_eq!(k.port, Some(infergate_config::PortRef::Number(8000)));
    assert!(cfg.backends[0].endpoints.is_empty());
    let pool = &cfg.backends[1].discovery.as_ref().unwrap().kubernetes;
    assert_eq!(pool.inference_pool.as_ref().unwrap().name, "qwen");
    let feed = cfg.health_feeds[0].kubernetes.as_ref().unwrap();
    assert_eq!(feed.port, 9200);
    assert!(cfg.health_feeds[0].url.is_empty());
}

#[test]
fn discovery_mistakes_have_their_paths() {
    let yaml = DISCOVERY
        .replace(
            "port: 8000 }",
            "port: 8000 }\n    endpoints: [{ url: \"http://127.0.0.1:8000\" }]",
        )
        .replace("name: qwen } }", "name: qwen }, port: 8000 }")
        .replace(
            "- kubernetes: {",
            "- url: http://127.0.0.1:9200/v1/health\n    kubernetes: {",
        );
    assert_errors(
        &errors(&yaml),
        &[
            "backends[0].endpoints: a backend with discovery takes its endpoints from it",
            "backends[1].discovery.kubernetes.port: comes from the InferencePool",
            "health_feeds[0]: has both url and kubernetes",
        ],
    );
    let no_source = DISCOVERY.replace(
        "    discovery:\n      kubernetes: { inference_pool: { namespace: models, name: qwen } }\n",
        "",
    );
    assert_errors(
        &errors(&no_source),
        &["backends[1].endpoints: at least one endpoint is required (or discovery)"],
    );
}
