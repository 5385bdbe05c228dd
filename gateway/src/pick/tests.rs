#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use infergate_config::Config;

use std::time::Duration;

use super::*;
use crate::compile::Compiler;
use crate::endpoint::EngineSample;
use crate::metrics::Metrics;
use crate::pick_policy::Reason;
use crate::table::Table;

fn endpoints(n: usize) -> String {
    (1..=n)
        .map(|i| format!("{{url: 'http://127.0.0.1:{i}'}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn table(yaml_endpoints: &str, limit: &str) -> Table {
    let yaml = format!(
        "listeners: {{ data: {{ address: '127.0.0.1:0' }}, admin: {{ address: '127.0.0.1:0' }} }}\n\
         backends: [{{ name: b, endpoints: [{yaml_endpoints}] {limit} }}]\n\
         models: [{{ name: m, backend: b }}]\n"
    );
    let cfg = Config::from_yaml(&yaml).unwrap();
    Compiler::new(Arc::new(Metrics::new().unwrap()))
        .compile(&Arc::new(cfg))
        .unwrap()
}

fn all(b: &BackendRt) -> Vec<usize> {
    (0..b.endpoints.len()).collect()
}

#[tokio::test]
async fn p2c_prefers_the_less_loaded_endpoint() {
    let t = table(
        "{url: 'http://127.0.0.1:1'}, {url: 'http://127.0.0.1:2/v1/'}",
        "",
    );
    let b = &t.route("m").unwrap().variants[0].backend;
    assert_eq!(b.endpoints[1].prefix.as_ref(), "/v1");
    let busy: Vec<_> = (0..5).map(|_| b.endpoints[0].state.acquire()).collect();
    for _ in 0..100 {
        let (i, _g) = b.pick(&all(b), &[], Instant::now()).unwrap();
        assert_eq!(i, 1);
    }
    drop(busy);
    let mut seen = [0i32; 2];
    let mut held = Vec::new();
    for _ in 0..100 {
        let (i, g) = b.pick(&all(b), &[], Instant::now()).unwrap();
        seen[i] += 1;
        held.push(g);
    }
    // Load is balanced: picking keeps the two counts within one of each other.
    assert!((seen[0] - seen[1]).abs() <= 1, "{seen:?}");
}

#[tokio::test]
async fn full_endpoints_are_passed_over() {
    let t = table(
        "{url: 'http://127.0.0.1:1'}, {url: 'http://127.0.0.1:2'}, {url: 'http://127.0.0.1:3'}",
        ", limits: { max_in_flight_per_endpoint: 2 }",
    );
    let b = &t.route("m").unwrap().variants[0].backend;
    let held: Vec<_> = (0..6)
        .map(|_| b.pick(&all(b), &[], Instant::now()).expect("capacity left"))
        .collect();
    assert!(b.endpoints.iter().all(|e| e.state.in_flight() == 2));
    assert!(b.pick(&all(b), &[], Instant::now()).is_none());
    drop(held);
    assert!(b.pick(&all(b), &[], Instant::now()).is_some());
}

fn sample(queue: u32, kv: f64) -> EngineSample {
    EngineSample {
        queue,
        running: 0,
        kv,
    }
}

fn model_aware(n: usize, extra: &str) -> Table {
    table(
        &endpoints(n),
        &format!(", balancer: {{ policy: model_aware, queue_threshold: 16, reason_header: true {extra} }}"),
    )
}

#[tokio::test(start_paused = true)]
async fn without_a_balancer_the_choice_is_p2c() {
    let t = table(&endpoints(2), "");
    let b = &t.route("m").unwrap().variants[0].backend;
    assert!(b.scheduler.is_none());
    let c = b.choose(&all(b), &[], Instant::now(), Some(1)).unwrap();
    assert_eq!(c.reason, Reason::P2c { in_flight: 0 });
}

#[tokio::test(start_paused = true)]
async fn model_aware_prefers_short_queues_and_skips_full_kv_caches() {
    let t = model_aware(3, "");
    let b = &t.route("m").unwrap().variants[0].backend;
    let now = Instant::now();
    b.endpoints[0].state.engine.set(sample(10, 0.1), now);
    b.endpoints[1].state.engine.set(sample(0, 0.2), now);
    b.endpoints[2].state.engine.set(sample(0, 0.95), now);
    let mut held = Vec::new();
    let mut seen = [0u32; 3];
    for k in 0..30 {
        let c = b.choose(&all(b), &[], now, None).unwrap();
        if k == 0 {
            assert_eq!(c.pos, 1);
            assert_eq!(
                c.reason,
                Reason::ModelAware {
                    score: 2.0,
                    queue: 0,
                    kv: 0.2
                }
            );
        }
        seen[c.pos] += 1;
        held.push(c.guard);
    }
    // Endpoint 1 (score 2 + in-flight) takes requests until it reaches endpoint 0's score
    // (10 + 1 + in-flight), then they share; endpoint 2 is past the KV threshold.
    assert_eq!(seen[2], 0, "{seen:?}");
    assert!(seen[1] >= 9 && seen[1] > seen[0], "{seen:?}");
    // When every endpoint is past a threshold, the best score still gets the request.
    for e in &b.endpoints {
        e.state.engine.set(sample(0, 0.99), now);
    }
    let c = b.choose(&all(b), &[], now, None).unwrap();
    assert!(
        matches!(c.reason, Reason::Saturated { .. }),
        "{:?}",
        c.reason
    );
    assert_eq!(c.pos, 2, "the least in flight");
}

#[tokio::test(start_paused = true)]
async fn stale_engine_state_falls_back_to_in_flight() {
    let t = model_aware(3, ", stale_after: 1s");
    let b = &t.route("m").unwrap().variants[0].backend;
    let now = Instant::now();
    // Endpoint 2 looks best by engine state but has the most in flight.
    b.endpoints[0].state.engine.set(sample(5, 0.5), now);
    b.endpoints[1].state.engine.set(sample(5, 0.5), now);
    b.endpoints[2].state.engine.set(sample(0, 0.0), now);
    let _busy: Vec<_> = (0..3).map(|_| b.endpoints[2].state.acquire()).collect();
    let _one = b.endpoints[0].state.acquire();
    let c = b.choose(&all(b), &[], Instant::now(), None).unwrap();
    assert_eq!(c.pos, 2);
    assert!(matches!(c.reason, Reason::ModelAware { .. }));
    drop(c);
    tokio::time::advance(Duration::from_millis(1500)).await;
    let c = b.choose(&all(b), &[], Instant::now(), None).unwrap();
    assert_eq!(c.reason, Reason::Stale { in_flight: 0 });
    assert_eq!(c.pos, 1, "the least in flight");
    // Ages are kept to the millisecond.
    let age = b.endpoints[2]
        .state
        .engine
        .read(Instant::now())
        .unwrap()
        .age;
    let ms = Duration::from_millis;
    assert!(age >= ms(1499) && age <= ms(1501), "{age:?}");
    // One fresh endpoint among stale ones does not bring scores back.
    b.endpoints[0]
        .state
        .engine
        .set(sample(0, 0.0), Instant::now());
    let c2 = b.choose(&all(b), &[], Instant::now(), None).unwrap();
    assert!(matches!(c2.reason, Reason::Stale { .. }), "{:?}", c2.reason);
}

#[tokio::test(start_paused = true)]
async fn a_shared_prefix_sticks_to_its_home_until_the_load_bound_spills_it() {
    let t = table(
        &endpoints(4),
        ", balancer: { prefix_affinity: { load_factor: 1.5 } }",
    );
    let b = &t.route("m").unwrap().variants[0].backend;
    let hash = crate::prefix::hash64(0, b"system prompt");
    let now = Instant::now();
    // Sequential requests (each done before the next) all go home.
    let home = b.choose(&all(b), &[], now, Some(hash)).unwrap();
    assert_eq!(home.reason, Reason::AffinityHit);
    let home_pos = home.pos;
    drop(home);
    for _ in 0..20 {
        let c = b.choose(&all(b), &[], now, Some(hash)).unwrap();
        assert_eq!((c.pos, c.reason), (home_pos, Reason::AffinityHit));
    }
    // Concurrent ones: home holds at most its bound, then the next on the ring.
    let mut held = Vec::new();
    let mut spills = 0;
    for _ in 0..40 {
        let c = b.choose(&all(b), &[], now, Some(hash)).unwrap();
        if let Reason::Spill { .. } = c.reason {
            spills += 1;
            assert_ne!(c.pos, home_pos);
        }
        held.push(c.guard);
    }
    assert!(spills > 0);
    let total: u32 = b.endpoints.iter().map(|e| e.state.in_flight()).sum();
    let bound = (1.5 * f64::from(total) / 4.0).ceil() as u32;
    for e in &b.endpoints {
        assert!(
            e.state.in_flight() <= bound,
            "{} > {bound}",
            e.state.in_flight()
        );
    }
    // An excluded home (a retry) spills too.
    drop(held);
    let c = b.choose(&all(b), &[home_pos], now, Some(hash)).unwrap();
    assert!(matches!(c.reason, Reason::Spill { .. }));
    assert_ne!(c.pos, home_pos);
}

#[tokio::test(start_paused = true)]
async fn least_latency_prefers_the_faster_endpoint_and_forgives_with_time() {
    let t = table(&endpoints(2), ", balancer: { policy: least_latency }");
    let b = &t.route("m").unwrap().variants[0].backend;
    b.endpoints[0]
        .state
        .record_success(Duration::from_millis(800));
    b.endpoints[1]
        .state
        .record_success(Duration::from_millis(40));
    b.endpoints[1]
        .state
        .record_success(Duration::from_millis(30));
    for _ in 0..10 {
        let c = b.choose(&all(b), &[], Instant::now(), None).unwrap();
        assert_eq!(c.pos, 1);
        assert!(matches!(c.reason, Reason::LeastLatency { .. }));
    }
    // Peak: a slow sample counts at once, a fast one only with time.
    let s = &b.endpoints[1].state;
    s.record_success(Duration::from_millis(500));
    s.record_success(Duration::from_millis(10));
    let cost = s.peak.get(Instant::now()).unwrap();
    assert!(cost >= Duration::from_millis(490), "{cost:?}");
    // The average decays toward zero with time since the last sample (tau 10 s).
    tokio::time::advance(Duration::from_secs(10)).await;
    let cost = s.peak.get(Instant::now()).unwrap();
    let want = 500.0 * (-1.0f64).exp();
    assert!((cost.as_secs_f64() * 1000.0 - want).abs() < 5.0, "{cost:?}");
}

#[tokio::test(start_paused = true)]
async fn explain_says_which_endpoint_the_backend_would_choose_and_why() {
    let t = model_aware(2, "");
    let v = crate::explain::explain(&t, "m", &http::HeaderMap::new()).unwrap();
    let c = &v["choice"];
    assert_eq!(c["policy"], "model_aware");
    assert_eq!(c["prefix_affinity"], false);
    // No engine state read yet: stale, by in-flight.
    assert!(
        c["reason"]
            .as_str()
            .unwrap()
            .starts_with("stale: in-flight"),
        "{c}"
    );
    assert_eq!(v["endpoints"][0]["engine"], serde_json::Value::Null);
    let b = &t.route("m").unwrap().variants[0].backend;
    b.endpoints[0]
        .state
        .engine
        .set(sample(0, 0.0), Instant::now());
    b.endpoints[1]
        .state
        .engine
        .set(sample(3, 0.5), Instant::now());
    let v = crate::explain::explain(&t, "m", &http::HeaderMap::new()).unwrap();
    assert_eq!(v["choice"]["endpoint"], "http://127.0.0.1:1");
    assert_eq!(
        v["choice"]["reason"],
        "model_aware score=0.00 queue=0 kv=0.000"
    );
    assert_eq!(v["endpoints"][1]["engine"]["queue"], 3);
    assert_eq!(
        b.endpoints[0].state.in_flight(),
        0,
        "the place is given back"
    );
    let text = crate::explain::render(&v);
    assert!(
        text.contains("endpoint choice (model_aware): http://127.0.0.1:1"),
        "{text}"
    );
}
