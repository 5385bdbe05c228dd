#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};
use infergate_config::Config;
use tokio::time::Instant;

use super::{saturated, Estimate};
use crate::compile::Compiler;
use crate::metrics::Metrics;
use crate::table::Table;

const BASE: &str = "listeners: { data: { address: '127.0.0.1:0' }, admin: { address: '127.0.0.1:0' } }\n\
     request_labels: { tenant: { header: x-tenant } }\n\
     backends: [{ name: b, endpoints: [{ url: 'http://127.0.0.1:1' }], limits: { max_in_flight_per_endpoint: 1 } }]\n\
     models: [{ name: m, backend: b }]\n";

fn compile(c: &mut Compiler, admission: &str) -> Table {
    let cfg = Config::from_yaml(&format!("{BASE}admission: {admission}\n")).unwrap();
    c.compile(&Arc::new(cfg)).unwrap()
}

fn compiler() -> Compiler {
    Compiler::new(Arc::new(Metrics::new().unwrap()))
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_static(v));
    }
    h
}

async fn json(resp: http::Response<bytes::Bytes>) -> serde_json::Value {
    serde_json::from_slice(resp.body()).unwrap()
}

const LIMITS: &str = "{ rate_limits: { key: { label: tenant }, default: { tokens_per_minute: 100 }, \
                       tenants: { big: { tokens_per_minute: 100000, requests_per_minute: 60 } } } }";

#[tokio::test(start_paused = true)]
async fn a_tenant_over_its_tokens_gets_openais_429() {
    let mut c = compiler();
    let t = compile(&mut c, LIMITS);
    let a = &t.admission;
    let body = br#"{"model":"m","max_tokens":60,"prompt":"0123456789"}"#;
    let h = headers(&[("x-tenant", "small")]);
    let ok = a.rate_limit(&h, body).ok().unwrap();
    assert!(ok.charge.is_some());
    let first = Estimate::of(body, 256).total();
    assert_eq!(ok.headers.tokens.unwrap().remaining, 100 - first);
    drop(ok);
    // Dropped unsettled: given back. Two in a row do not fit.
    let _held = a.rate_limit(&h, body).ok().unwrap();
    let resp = a.rate_limit(&h, body).err().unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let hd = resp.headers().clone();
    assert_eq!(hd["x-ratelimit-limit-tokens"], "100");
    assert_eq!(
        hd["x-ratelimit-remaining-tokens"],
        (100 - first).to_string().as_str()
    );
    assert!(hd.get("x-ratelimit-limit-requests").is_none());
    let wait: u64 = hd["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let v = json(resp).await;
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert_eq!(v["error"]["type"], "tokens");
    assert!(v["error"]["param"].is_null());
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("tenant `small`") && msg.contains("Limit 100"),
        "{msg}"
    );
    // Another tenant, listed with its own limits, is not affected.
    let big = a
        .rate_limit(&headers(&[("x-tenant", "big")]), body)
        .ok()
        .unwrap();
    assert_eq!(big.headers.requests.unwrap().limit, 60);
}

#[tokio::test(start_paused = true)]
async fn buckets_survive_a_reload_that_keeps_the_key() {
    let mut c = compiler();
    let t1 = compile(&mut c, LIMITS);
    let h = headers(&[("x-tenant", "small")]);
    let body = br#"{"model":"m","max_tokens":90}"#;
    let held = t1.admission.rate_limit(&h, body).ok().unwrap();
    let changed = LIMITS.replace("60 }", "61 }");
    let t2 = compile(&mut c, &changed);
    assert!(!Arc::ptr_eq(&t1.admission, &t2.admission));
    assert!(t2.admission.rate_limit(&h, body).is_err());
    drop(held);
    // An unchanged section keeps the whole compiled admission.
    let t3 = compile(&mut c, &changed);
    assert!(Arc::ptr_eq(&t2.admission, &t3.admission));
}

const PRIORITY: &str =
    "{ priority: { header: x-priority, classes: [{ name: high, queue: 5, max_wait: 10s }, \
                         { name: low, queue: 5, max_wait: 1s }], default: low } }";

#[tokio::test(start_paused = true)]
async fn a_saturated_variant_queues_and_a_release_hands_the_place_over() {
    let mut c = compiler();
    let t = compile(&mut c, PRIORITY);
    let route = t.route("m").unwrap().clone();
    let backend = route.variants[0].backend.clone();
    let (_, busy) = backend
        .pick(&route.variants[0].members, &[], Instant::now())
        .unwrap();
    assert!(saturated(
        &backend,
        &route.variants[0].members,
        &[],
        Instant::now()
    ));
    let a = t.admission.clone();
    let r2 = route.clone();
    let waiter = tokio::spawn(async move {
        let h = headers(&[("x-priority", "high")]);
        let far = Instant::now() + Duration::from_secs(60);
        a.wait(&h, &r2, 0, &[], far)
            .await
            .map(|p| p.map(|(pos, _)| pos))
    });
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let mut text = Vec::new();
    t.admission.render(&mut text);
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("infergate_admission_queue_depth{class=\"high\"} 1"),
        "{text}"
    );
    // The exchange's release: the guard goes, then the queue is woken.
    drop(busy);
    crate::admission::Ticket::new(t.admission.queue("b").cloned(), None).released();
    assert_eq!(waiter.await.unwrap().ok().unwrap(), Some(0));
}

#[tokio::test(start_paused = true)]
async fn a_low_request_waits_its_max_wait_then_gets_a_429() {
    let mut c = compiler();
    let t = compile(&mut c, PRIORITY);
    let route = t.route("m").unwrap().clone();
    let v = &route.variants[0];
    let _busy = v.backend.pick(&v.members, &[], Instant::now()).unwrap();
    let start = Instant::now();
    let far = start + Duration::from_secs(60);
    // No class header: the default class, low, which waits 1 s.
    let resp = t
        .admission
        .wait(&HeaderMap::new(), &route, 0, &[], far)
        .await
        .err()
        .unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "1");
    let v = json(resp).await;
    assert_eq!(v["error"]["code"], "queue_timeout");
    assert_eq!(v["error"]["type"], "server_error");
    let mut text = Vec::new();
    t.admission.render(&mut text);
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("infergate_admission_shed_total{class=\"low\",reason=\"timeout\"} 1"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unsaturated_variant_or_no_priority_is_not_queued() {
    let mut c = compiler();
    let t = compile(&mut c, PRIORITY);
    let route = t.route("m").unwrap().clone();
    let far = Instant::now() + Duration::from_secs(60);
    // A free endpoint: not saturated (the caller's pick failed for another reason).
    assert!(t
        .admission
        .wait(&HeaderMap::new(), &route, 0, &[], far)
        .await
        .ok()
        .unwrap()
        .is_none());
    // Every endpoint excluded: nothing usable, not saturated.
    let v = &route.variants[0];
    assert!(!saturated(&v.backend, &v.members, &[0], Instant::now()));
    let t = compile(&mut c, "{}");
    assert!(t.admission.queue("b").is_none());
    assert!(t
        .admission
        .wait(&HeaderMap::new(), &route, 0, &[], far)
        .await
        .ok()
        .unwrap()
        .is_none());
    let mut text = Vec::new();
    t.admission.render(&mut text);
    assert!(text.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_reload_keeps_each_backends_queue_and_gives_a_new_backend_one() {
    let mut c = compiler();
    let t1 = compile(&mut c, PRIORITY);
    let q1 = t1.admission.queue("b").unwrap().clone();
    let two = format!(
        "{}admission: {PRIORITY}\n",
        BASE.replace(
            "backends: [",
            "backends: [{ name: b2, endpoints: [{ url: 'http://127.0.0.1:2' }] }, "
        )
    );
    let cfg = Config::from_yaml(&two).unwrap();
    let t2 = c.compile(&Arc::new(cfg)).unwrap();
    assert!(Arc::ptr_eq(&q1, t2.admission.queue("b").unwrap()));
    assert!(t2.admission.queue("b2").is_some());
}

#[tokio::test(start_paused = true)]
async fn the_class_can_come_from_a_request_label() {
    let mut c = compiler();
    let t = compile(
        &mut c,
        "{ priority: { label: tenant, classes: [{ name: gold }, { name: rest }], default: rest } }",
    );
    let route = t.route("m").unwrap().clone();
    let v = &route.variants[0];
    let _busy = v.backend.pick(&v.members, &[], Instant::now()).unwrap();
    let a = t.admission.clone();
    let r = route.clone();
    let waiter = tokio::spawn(async move {
        let h = headers(&[("x-tenant", "gold")]);
        let far = Instant::now() + Duration::from_secs(60);
        a.wait(&h, &r, 0, &[], far).await.is_ok()
    });
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let mut text = Vec::new();
    t.admission.render(&mut text);
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("infergate_admission_queue_depth{class=\"gold\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("infergate_admission_queue_depth{class=\"rest\"} 0"),
        "{text}"
    );
    waiter.abort();
}

/// A backend whose balancer reads engine state: saturated when every endpoint's fresh reading
/// is past a threshold while this gateway has a request on it; not when the reading is stale,
/// below the thresholds, or nothing of ours is in flight there.
#[tokio::test(start_paused = true)]
async fn engine_state_past_the_thresholds_saturates_a_variant() {
    let cfg = Config::from_yaml(
        "listeners: { data: { address: '127.0.0.1:0' }, admin: { address: '127.0.0.1:0' } }\n\
         backends: [{ name: b, endpoints: [{ url: 'http://127.0.0.1:1' }, { url: 'http://127.0.0.1:2' }], \
           balancer: { policy: model_aware, queue_threshold: 4, kv_threshold: 0.9, stale_after: 1s } }]\n\
         models: [{ name: m, backend: b }]\n\
         admission: { priority: { header: x-priority, classes: [{ name: high }], default: high } }\n",
    )
    .unwrap();
    let t = compiler().compile(&Arc::new(cfg)).unwrap();
    let route = t.route("m").unwrap().clone();
    let members = &route.variants[0].members;
    let backend = route.variants[0].backend.clone();
    let now = Instant::now();
    let sample = |queue, kv| crate::endpoint::EngineSample {
        queue,
        running: 1,
        kv,
    };
    let eps = &backend.endpoints;
    // No readings yet, nothing in flight: not saturated.
    assert!(!saturated(&backend, members, &[], now));
    eps[0].state.engine.set(sample(9, 0.5), now);
    eps[1].state.engine.set(sample(0, 0.95), now);
    // Past the thresholds, but no request of ours on them: no release would come.
    assert!(!saturated(&backend, members, &[], now));
    let (_, g0) = backend.pick(members, &[1], now).unwrap();
    let (_, g1) = backend.pick(members, &[0], now).unwrap();
    assert!(saturated(&backend, members, &[], now));
    // One endpoint below both thresholds: it has room.
    eps[1].state.engine.set(sample(1, 0.2), now);
    assert!(!saturated(&backend, members, &[], now));
    eps[1].state.engine.set(sample(4, 0.2), now);
    assert!(saturated(&backend, members, &[], now));
    // Stale readings say nothing.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(!saturated(&backend, members, &[], Instant::now()));
    drop((g0, g1));
}
