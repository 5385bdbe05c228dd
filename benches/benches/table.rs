//! The gateway's table at cluster scale: 1,000 models, each on its own backend of 10 endpoints
//! (10,000 endpoints on loopback addresses; nothing is sent to them).
//!
//! * `table/parse`: YAML to a validated `Config` (the first step of every reload);
//! * `table/compile_full`: compiling the whole table with nothing to reuse;
//! * `table/compile_unchanged`: compiling the same config again (an unchanged reload);
//! * `table/apply_endpoints`: replacing one backend's endpoints through the compiler;
//! * `route/10` vs `route/10000`: one request's routing (one snapshot load, the model's route,
//!   the rule and variant, the endpoint pick and its release) in a table of 10 endpoints and in
//!   one of 10,000, measured in the same run.
//!
//! Run with `cargo bench -p infergate-benches --bench table`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::HeaderMap;
use infergate_config::{Config, Endpoint};
use infergate_gateway::compile::Compiler;
use infergate_gateway::gateway::Gateway;
use infergate_gateway::metrics::Metrics;
use infergate_gateway::route::RequestView;
use tokio::time::Instant;

/// A config of `models` models, each on its own backend of `per_backend` endpoints.
fn config_text(models: usize, per_backend: usize) -> String {
    let mut s = String::from(
        "listeners: { data: { address: '127.0.0.1:0' }, admin: { address: '127.0.0.1:0' } }\nbackends:\n",
    );
    for m in 0..models {
        s.push_str(&format!("  - name: b{m:04}\n    endpoints:\n"));
        for e in 0..per_backend {
            let k = m * per_backend + e;
            s.push_str(&format!(
                "      - {{ url: 'http://127.{}.{}.{}:8000', labels: {{ node: node-{:04} }} }}\n",
                k >> 16 & 255,
                k >> 8 & 255,
                k & 255,
                k / 8
            ));
        }
    }
    s.push_str("models:\n");
    for m in 0..models {
        s.push_str(&format!("  - {{ name: m{m:04}, backend: b{m:04} }}\n"));
    }
    s
}

fn endpoints(base: usize, n: usize) -> Vec<Endpoint> {
    (base..base + n)
        .map(|k| Endpoint {
            url: format!(
                "http://127.{}.{}.{}:9000",
                k >> 16 & 255,
                k >> 8 & 255,
                k & 255
            ),
            labels: Default::default(),
            require_warm: false,
        })
        .collect()
}

fn table(c: &mut Criterion) {
    let text = config_text(1000, 10);
    let cfg = Arc::new(Config::from_yaml(&text).unwrap());
    let mut g = c.benchmark_group("table");
    g.sample_size(20);
    g.bench_function("parse", |b| {
        b.iter(|| Config::from_yaml(black_box(&text)).unwrap())
    });
    g.bench_function("compile_full", |b| {
        b.iter_batched(
            || Compiler::new(Arc::new(Metrics::new().unwrap())),
            |mut c| c.compile(&cfg).unwrap(),
            BatchSize::LargeInput,
        )
    });
    let mut compiler = Compiler::new(Arc::new(Metrics::new().unwrap()));
    compiler.compile(&cfg).unwrap();
    g.bench_function("compile_unchanged", |b| {
        b.iter(|| compiler.compile(&cfg).unwrap())
    });
    let mut flip = false;
    g.bench_function("apply_endpoints", |b| {
        b.iter(|| {
            flip = !flip;
            let set = endpoints(if flip { 20_000 } else { 30_000 }, 10);
            compiler.apply_endpoints("b0500", set).unwrap()
        })
    });
    g.finish();
}

fn route(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let mut g = c.benchmark_group("route");
    let headers = HeaderMap::new();
    for (models, name) in [(1, "10"), (1000, "10000")] {
        let text = config_text(models, 10);
        let gw = rt
            .block_on(Gateway::start(
                text,
                None,
                Arc::new(Metrics::new().unwrap()),
            ))
            .unwrap();
        let model = format!("m{:04}", models / 2);
        g.bench_function(name, |b| {
            b.iter(|| {
                let table = gw.snapshot();
                let route = table.route(black_box(&model)).unwrap();
                let view = RequestView {
                    headers: &headers,
                    labels: &table.labels,
                };
                let d = route.decide(&view, &table.pin_header).unwrap();
                let v = &route.variants[d.variant];
                let picked = v.backend.pick(&v.members, &[], Instant::now()).unwrap();
                black_box(picked.0)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, table, route);
criterion_main!(benches);
