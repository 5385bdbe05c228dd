#![allow(clippy::unwrap_used)]

use super::*;
use crate::route::RequestView;

fn config(backends: &str, models: &str, extra: &str) -> Arc<Config> {
    let yaml = format!(
        "listeners: {{ data: {{ address: '127.0.0.1:0' }}, admin: {{ address: '127.0.0.1:0' }} }}\n\
         {extra}backends: [{backends}]\nmodels: [{models}]\n"
    );
    Arc::new(Config::from_yaml(&yaml).unwrap())
}

fn endpoints(urls: &[&str]) -> Vec<infergate_config::Endpoint> {
    urls.iter()
        .map(|u| infergate_config::Endpoint {
            url: (*u).to_owned(),
            labels: Default::default(),
            require_warm: false,
        })
        .collect()
}

const TWO: &str =
    "{ name: a, endpoints: [{url: 'http://127.0.0.1:1'}, {url: 'http://127.0.0.1:2'}] }, \
                   { name: b, endpoints: [{url: 'http://127.0.0.1:3'}] }";
const MODELS: &str = "{ name: ma, backend: a }, { name: mb, backend: b }";

#[test]
fn an_unchanged_config_rebuilds_nothing_and_keeps_every_route() {
    let mut c = Compiler::new(Arc::new(Metrics::new().unwrap()));
    let cfg = config(TWO, MODELS, "");
    let (t1, r1) = c.compile_counted(&cfg).unwrap();
    assert_eq!(
        r1,
        Rebuilt {
            backends: 2,
            models: 2
        }
    );
    let (t2, r2) = c.compile_counted(&cfg).unwrap();
    assert_eq!(r2, Rebuilt::default());
    assert!(Arc::ptr_eq(
        t1.route("ma").unwrap(),
        t2.route("ma").unwrap()
    ));
    assert!(Arc::ptr_eq(&t1.backends()[0], &t2.backends()[0]));
}

#[test]
fn a_changed_backend_rebuilds_it_and_its_models_only() {
    let mut c = Compiler::new(Arc::new(Metrics::new().unwrap()));
    let (t1, _) = c.compile_counted(&config(TWO, MODELS, "")).unwrap();
    let changed = TWO.replace("127.0.0.1:3", "127.0.0.1:4");
    let (t2, r) = c.compile_counted(&config(&changed, MODELS, "")).unwrap();
    assert_eq!(
        r,
        Rebuilt {
            backends: 1,
            models: 1
        }
    );
    assert!(Arc::ptr_eq(
        t1.route("ma").unwrap(),
        t2.route("ma").unwrap()
    ));
    assert!(!Arc::ptr_eq(
        t1.route("mb").unwrap(),
        t2.route("mb").unwrap()
    ));
    assert_eq!(
        &*t2.backend("b").unwrap().endpoints[0].state.url,
        "http://127.0.0.1:4"
    );
}

#[test]
fn a_failed_build_changes_nothing() {
    let mut c = Compiler::new(Arc::new(Metrics::new().unwrap()));
    let cfg = config(TWO, MODELS, "");
    c.compile(&cfg).unwrap();
    let err = c
        .apply_endpoints("a", endpoints(&["not a url"]))
        .err()
        .unwrap();
    assert!(
        err.0[0].path.starts_with("backends.a.endpoints[0]"),
        "{err:?}"
    );
    let (_, r) = c.compile_counted(&cfg).unwrap();
    assert_eq!(
        r,
        Rebuilt::default(),
        "the failed set left the last build as it was"
    );
}

#[tokio::test]
async fn apply_endpoints_rebuilds_one_backend_and_keeps_endpoint_state() {
    let mut c = Compiler::new(Arc::new(Metrics::new().unwrap()));
    let t1 = c.compile(&config(TWO, MODELS, "")).unwrap();
    let kept = t1.backend("a").unwrap().endpoints[1].state.clone();
    let _busy = kept.acquire();
    let (t2, r) = c
        .apply_endpoints(
            "a",
            endpoints(&["http://127.0.0.1:2", "http://127.0.0.1:5"]),
        )
        .unwrap();
    assert_eq!(
        r,
        Rebuilt {
            backends: 1,
            models: 1
        }
    );
    let a = t2.backend("a").unwrap();
    assert!(
        Arc::ptr_eq(&a.endpoints[0].state, &kept),
        "state carried over"
    );
    assert_eq!(a.endpoints[0].state.in_flight(), 1);
    assert_eq!(&*a.endpoints[1].state.url, "http://127.0.0.1:5");
    assert!(Arc::ptr_eq(
        t1.route("mb").unwrap(),
        t2.route("mb").unwrap()
    ));
    assert!(Arc::ptr_eq(&t1.backends()[1], &t2.backends()[1]));
    // The model's variant now routes to the new set.
    let route = t2.route("ma").unwrap();
    assert!(Arc::ptr_eq(&route.variants[0].backend, a));
    assert_eq!(route.variants[0].members, vec![0, 1]);
    // A later unchanged config file puts the file's endpoints back.
    let (t3, r) = c.compile_counted(&config(TWO, MODELS, "")).unwrap();
    assert_eq!(
        r,
        Rebuilt {
            backends: 1,
            models: 1
        }
    );
    assert_eq!(
        &*t3.backend("a").unwrap().endpoints[0].state.url,
        "http://127.0.0.1:1"
    );
    assert!(c.apply_endpoints("nope", vec![]).is_err());
}

#[tokio::test]
async fn series_of_removed_endpoints_disappear() {
    let metrics = Arc::new(Metrics::new().unwrap());
    let mut c = Compiler::new(metrics.clone());
    let t = c.compile(&config(TWO, MODELS, "")).unwrap();
    let route = t.route("ma").unwrap();
    for m in &route.variants[0].metrics {
        m.count(crate::metrics::Outcome::Success);
    }
    let text = String::from_utf8(metrics.encode()).unwrap();
    assert!(text.contains("127.0.0.1:1\""), "{text}");
    let (_t2, _) = c
        .apply_endpoints("a", endpoints(&["http://127.0.0.1:2"]))
        .unwrap();
    let text = String::from_utf8(metrics.encode()).unwrap();
    assert!(!text.contains("127.0.0.1:1\""), "{text}");
    assert!(
        text.contains(r#"endpoint="http://127.0.0.1:2",model="ma",outcome="success""#),
        "{text}"
    );
}

#[test]
fn request_labels_changes_rebuild_every_model() {
    let mut c = Compiler::new(Arc::new(Metrics::new().unwrap()));
    c.compile(&config(TWO, MODELS, "")).unwrap();
    let (t, r) = c
        .compile_counted(&config(
            TWO,
            MODELS,
            "request_labels: { tenant: { header: x-tenant } }\n",
        ))
        .unwrap();
    assert_eq!(r.models, 2);
    let headers = http::HeaderMap::new();
    let view = RequestView {
        headers: &headers,
        labels: &t.labels,
    };
    assert!(t
        .route("ma")
        .unwrap()
        .decide(&view, &t.pin_header)
        .is_some());
}

#[tokio::test]
async fn models_list_is_openai_shaped() {
    let t = Compiler::new(Arc::new(Metrics::new().unwrap()))
        .compile(&config(TWO, MODELS, ""))
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&t.models_json).unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "ma");
    assert_eq!(v["data"][0]["object"], "model");
}

const FOUND: &str = "{ name: d, discovery: { kubernetes: { namespace: models, selector: { app: vllm }, port: 8000 } } }, \
                     { name: b, endpoints: [{url: 'http://127.0.0.1:3'}] }";

fn urls(t: &Table, backend: &str) -> Vec<String> {
    t.backend(backend)
        .unwrap()
        .endpoints
        .iter()
        .map(|e| e.state.url.to_string())
        .collect()
}

#[test]
fn a_reload_keeps_what_discovery_found() {
    let mut c = Compiler::new(Arc::new(Metrics::new().unwrap()));
    let models = "{ name: md, backend: d }, { name: mb, backend: b }";
    let (t0, _) = c.compile_counted(&config(FOUND, models, "")).unwrap();
    assert!(urls(&t0, "d").is_empty(), "nothing found yet");
    let (t1, _) = c
        .apply_endpoints(
            "d",
            endpoints(&["http://127.0.0.1:7", "http://127.0.0.1:8"]),
        )
        .unwrap();
    assert_eq!(urls(&t1, "d"), ["http://127.0.0.1:7", "http://127.0.0.1:8"]);

    // The same file again: nothing is rebuilt and the found endpoints stay.
    let (t2, r) = c.compile_counted(&config(FOUND, models, "")).unwrap();
    assert_eq!(r, Rebuilt::default());
    assert!(Arc::ptr_eq(
        t1.backend("d").unwrap(),
        t2.backend("d").unwrap()
    ));

    // A changed setting of the discovered backend rebuilds it with the found endpoints.
    let changed = FOUND.replace(
        "port: 8000 } }",
        "port: 8000 } }, retry: { max_attempts: 2 }",
    );
    let (t3, r) = c.compile_counted(&config(&changed, models, "")).unwrap();
    assert_eq!(r.backends, 1);
    assert_eq!(urls(&t3, "d"), ["http://127.0.0.1:7", "http://127.0.0.1:8"]);

    // A backend that leaves the file forgets what was found for it.
    let static_d = FOUND.replace(
        "discovery: { kubernetes: { namespace: models, selector: { app: vllm }, port: 8000 } }",
        "endpoints: [{url: 'http://127.0.0.1:9'}]",
    );
    let (t4, _) = c.compile_counted(&config(&static_d, models, "")).unwrap();
    assert_eq!(urls(&t4, "d"), ["http://127.0.0.1:9"]);
    let (t5, _) = c.compile_counted(&config(FOUND, models, "")).unwrap();
    assert!(urls(&t5, "d").is_empty());
}

#[tokio::test]
async fn connection_pools_outlive_rebuilds_and_end_with_their_endpoint() {
    let mut c = Compiler::new(Arc::new(Metrics::new().unwrap()));
    let t1 = c.compile(&config(TWO, MODELS, "")).unwrap();
    let a1 = t1.backend("a").unwrap().clone();
    assert_eq!(a1.endpoints[0].host, "127.0.0.1:1");
    let kept = Arc::downgrade(&a1.endpoints[1].pool);
    let gone = Arc::downgrade(&a1.endpoints[0].pool);
    // Backend `a` is rebuilt: 127.0.0.1:2 stays, 127.0.0.1:1 leaves.
    let (t2, _) = c
        .apply_endpoints(
            "a",
            endpoints(&["http://127.0.0.1:2", "http://127.0.0.1:5/prefix"]),
        )
        .unwrap();
    let a2 = t2.backend("a").unwrap();
    assert!(Arc::ptr_eq(&a2.endpoints[0].pool, &kept.upgrade().unwrap()));
    drop((t1, a1));
    assert!(gone.upgrade().is_none(), "the pool left with its endpoint");
    assert!(kept.upgrade().is_some());
    // The default port is left out of `Host`, as hyper-util's client writes it.
    let t3 = c
        .compile(&config(
            "{ name: a, endpoints: [{url: 'http://localhost:80'}, {url: 'https://[::1]:8443'}] }",
            "{ name: ma, backend: a }",
            "",
        ))
        .unwrap();
    let a3 = t3.backend("a").unwrap();
    assert_eq!(a3.endpoints[0].host, "localhost");
    assert_eq!(a3.endpoints[1].host, "[::1]:8443");
}
