//! The `admission` section: parsing with defaults, and every problem reported with its path.
#![allow(clippy::unwrap_used)]

use infergate_config::Config;

fn config(admission: &str) -> String {
    format!(
        "listeners: {{ data: {{ address: '127.0.0.1:0' }}, admin: {{ address: '127.0.0.1:0' }} }}\n\
         request_labels: {{ tenant: {{ header: x-tenant }} }}\n\
         backends: [{{ name: b, endpoints: [{{ url: 'http://127.0.0.1:1' }}] }}]\n\
         models: [{{ name: m, backend: b }}]\n\
         admission: {admission}\n"
    )
}

fn errors(admission: &str) -> Vec<String> {
    match Config::from_yaml(&config(admission)) {
        Ok(_) => Vec::new(),
        Err(e) => {
            e.0.iter()
                .map(|e| format!("{}: {}", e.path, e.reason))
                .collect()
        }
    }
}

#[test]
fn a_full_admission_section_parses_with_its_defaults() {
    let cfg = Config::from_yaml(&config(
        "{ priority: { header: x-priority, classes: [{ name: high, queue: 10, max_wait: 2s }, \
         { name: low }], default: low }, \
         rate_limits: { key: { label: tenant }, default: { tokens_per_minute: 1000 }, \
         tenants: { acme: { requests_per_minute: 5 } } } }",
    ))
    .unwrap();
    let p = cfg.admission.priority.unwrap();
    assert_eq!(p.classes[0].queue, 10);
    assert_eq!(p.classes[0].max_wait.get().as_secs(), 2);
    assert_eq!(p.classes[1].queue, 100);
    assert_eq!(p.classes[1].max_wait.get().as_secs(), 5);
    let r = cfg.admission.rate_limits.unwrap();
    assert_eq!(r.key.label.as_deref(), Some("tenant"));
    assert_eq!(r.default.tokens_per_minute, Some(1000));
    assert_eq!(r.default.requests_per_minute, None);
    assert_eq!(r.tenants["acme"].requests_per_minute, Some(5));
    assert_eq!(
        (r.replicas, r.default_max_tokens, r.max_tenants),
        (1, 256, 10_000)
    );
}

#[test]
fn no_admission_section_means_none() {
    let text = config("{}");
    let cfg = Config::from_yaml(&text).unwrap();
    assert!(cfg.admission.priority.is_none() && cfg.admission.rate_limits.is_none());
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let errs = errors(
        "{ priority: { header: 'bad header', label: tenant, classes: [{ name: a, max_wait: 0s }, \
         { name: a }], default: z, max_queued: 0 }, \
         rate_limits: { key: { label: user }, default: { tokens_per_minute: 0 }, \
         tenants: { t: { requests_per_minute: 0 } }, replicas: 0 } }",
    );
    let want = [
        "admission.priority: set exactly one of header or label",
        "admission.priority.classes[0].max_wait: must be greater than 0",
        "admission.priority.classes[1].name: duplicate class name \"a\"",
        "admission.priority.default: unknown class \"z\" (known: a, a)",
        "admission.priority.max_queued: must be greater than 0",
        "admission.rate_limits.key.label: unknown label \"user\": define it in request_labels (known: tenant)",
        "admission.rate_limits.default.tokens_per_minute: must be greater than 0",
        "admission.rate_limits.tenants.t.requests_per_minute: must be greater than 0",
        "admission.rate_limits.replicas: must be greater than 0",
    ];
    for w in want {
        assert!(
            errs.iter().any(|e| e.starts_with(w)),
            "missing {w:?} in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), want.len(), "{errs:#?}");
}

#[test]
fn a_bad_header_name_is_refused() {
    let errs = errors("{ priority: { header: 'x y', classes: [{ name: a }], default: a } }");
    assert_eq!(
        errs,
        vec!["admission.priority.header: \"x y\" is not a header name".to_owned()]
    );
}
