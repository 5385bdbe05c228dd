//! The scheduler's cost per request at 10 and at 10,000 endpoints, measured in the same run:
//!
//! * `scheduler/p2c/N`: a backend without `balancer` (power of two choices on in-flight);
//! * `scheduler/model_aware/N`: `model_aware` over fresh engine state (8 candidates scored;
//!   `stale_after: 1h` keeps the state set before the run fresh);
//! * `scheduler/affinity/N`: `model_aware` with prefix affinity: the prefix hash of a 2 KiB chat
//!   body (4 blocks of 256 bytes) and the ring walk with its load bound;
//! * `scheduler/prefix_hash`: the prefix hash alone.
//!
//! Each iteration chooses an endpoint and releases its in-flight place. Nothing is sent to the
//! endpoints (loopback addresses).
//!
//! Run with `cargo bench -p infergate-benches --bench scheduler`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use infergate_config::Config;
use infergate_gateway::compile::Compiler;
use infergate_gateway::endpoint::EngineSample;
use infergate_gateway::metrics::Metrics;
use infergate_gateway::table::Table;
use tokio::time::Instant;

fn table(n: usize, balancer: &str) -> Table {
    let mut s = String::from(
        "listeners: { data: { address: '127.0.0.1:0' }, admin: { address: '127.0.0.1:0' } }\n\
         backends:\n  - name: b\n",
    );
    s.push_str(balancer);
    s.push_str("    endpoints:\n");
    for k in 0..n {
        s.push_str(&format!(
            "      - {{ url: 'http://127.{}.{}.{}:8000' }}\n",
            k >> 16 & 255,
            k >> 8 & 255,
            k & 255
        ));
    }
    s.push_str("models:\n  - { name: m, backend: b }\n");
    let cfg = Config::from_yaml(&s).unwrap();
    Compiler::new(Arc::new(Metrics::new().unwrap()))
        .compile(&Arc::new(cfg))
        .unwrap()
}

fn body() -> Vec<u8> {
    let system = "You are a helpful assistant. ".repeat(70);
    format!(
        r#"{{"model":"m","stream":true,"messages":[{{"role":"system","content":"{system}"}},{{"role":"user","content":"What is the capital of France?"}}]}}"#
    )
    .into_bytes()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let body = body();
    let mut g = c.benchmark_group("scheduler");
    for n in [10usize, 10_000] {
        for (name, balancer) in [
            ("p2c", ""),
            (
                "model_aware",
                "    balancer: { policy: model_aware, stale_after: 1h }\n",
            ),
            (
                "affinity",
                "    balancer: { policy: model_aware, stale_after: 1h, prefix_affinity: {} }\n",
            ),
        ] {
            let t = table(n, balancer);
            let route = t.route("m").unwrap().clone();
            let v = &route.variants[0];
            let b = v.backend.clone();
            let now = Instant::now();
            for (i, e) in b.endpoints.iter().enumerate() {
                let sample = EngineSample {
                    queue: (i % 7) as u32,
                    running: 4,
                    kv: (i % 10) as f64 / 10.0,
                };
                e.state.engine.set(sample, now);
            }
            g.bench_function(format!("{name}/{n}"), |bn| {
                bn.iter(|| {
                    let prefix = b.prefix_of(black_box(&body));
                    let c = b.choose(&v.members, &[], now, prefix).unwrap();
                    black_box(c.pos)
                })
            });
        }
    }
    g.bench_function("prefix_hash", |bn| {
        bn.iter(|| infergate_gateway::prefix::prefix_hash(black_box(&body), 256, 4))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
