#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use infergate_config::Config;

use super::*;
use crate::compile::Compiler;
use crate::metrics::Metrics;
use crate::protocols::comfyui::{PromptMap, PROMPT_TTL};
use crate::table::Table;

fn table(n: usize) -> Table {
    let eps: Vec<String> = (1..=n)
        .map(|i| format!("{{url: 'http://127.0.0.1:{i}'}}"))
        .collect();
    let yaml = format!(
        "listeners: {{ data: {{ address: '127.0.0.1:0' }}, admin: {{ address: '127.0.0.1:0' }} }}\n\
         backends: [{{ name: b, endpoints: [{}] }}]\n\
         models: [{{ name: comfy, backend: b }}]\n\
         path_routes: [{{ kind: comfyui, model: comfy }}]\n",
        eps.join(", ")
    );
    let cfg = Config::from_yaml(&yaml).unwrap();
    Compiler::new(Arc::new(Metrics::new().unwrap()))
        .compile(&Arc::new(cfg))
        .unwrap()
}

/// The one position left in by `exclude_for`.
fn target(exclude: &[usize], n: usize) -> Option<usize> {
    let left: Vec<usize> = (0..n).filter(|p| !exclude.contains(p)).collect();
    (left.len() == 1).then(|| left[0])
}

#[tokio::test]
async fn a_client_id_pins_one_endpoint_and_clients_spread() {
    let t = table(4);
    let b = &t.route("comfy").unwrap().variants[0].backend;
    let members: Vec<usize> = (0..4).collect();
    let now = Instant::now();
    let mut seen = [0u32; 4];
    for c in 0..400 {
        let pin = Pin::Client(format!("client-{c}"));
        let first = target(&exclude_for(Some(&pin), b, &members, &[], now), 4).unwrap();
        let again = target(&exclude_for(Some(&pin), b, &members, &[], now), 4).unwrap();
        assert_eq!(first, again);
        seen[first] += 1;
        // After a failure there, the next endpoint in the client's order, never the same one.
        let next = target(&exclude_for(Some(&pin), b, &members, &[first], now), 4).unwrap();
        assert_ne!(next, first);
    }
    assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    assert_eq!(exclude_for(None, b, &members, &[2], now), vec![2]);
}

#[tokio::test]
async fn a_prompt_pins_the_endpoint_that_took_it() {
    let t = table(3);
    let b = &t.route("comfy").unwrap().variants[0].backend;
    let members: Vec<usize> = (0..3).collect();
    let now = Instant::now();
    let map = PromptMap::default();
    map.remember("p1".into(), "http://127.0.0.1:2", now);
    let url = map.endpoint("p1", now).unwrap();
    let pin = Pin::Endpoint(url);
    assert_eq!(
        target(&exclude_for(Some(&pin), b, &members, &[], now), 3),
        Some(1)
    );
    // Tried already: nothing is left to pick.
    assert_eq!(exclude_for(Some(&pin), b, &members, &[1], now).len(), 3);
    // An endpoint that left: no pin.
    let gone = Pin::Endpoint("http://127.0.0.1:9".into());
    assert!(exclude_for(Some(&gone), b, &members, &[], now).is_empty());
    assert_eq!(map.endpoint("p1", now + PROMPT_TTL), None);
    assert_eq!(map.endpoint("p2", now), None);
}

#[tokio::test]
async fn a_pin_moves_a_random_draw_to_the_variant_that_can_serve_it() {
    let yaml = "listeners: { data: { address: '127.0.0.1:0' }, admin: { address: '127.0.0.1:0' } }\n\
         backends: [{ name: b, endpoints: [{url: 'http://127.0.0.1:1', labels: {v: a}}, {url: 'http://127.0.0.1:2', labels: {v: b}}] }]\n\
         models: [{ name: comfy, variants: [{name: a, backend: b, selector: {v: a}}, {name: b, backend: b, selector: {v: b}}],\n\
           routes: [{ split: [{variant: a, weight: 50}, {variant: b, weight: 50}] }] }]\n";
    let cfg = Config::from_yaml(yaml).unwrap();
    let t = Compiler::new(Arc::new(Metrics::new().unwrap()))
        .compile(&Arc::new(cfg))
        .unwrap();
    let route = t.route("comfy").unwrap();
    let drawn = |variant| Decision {
        rule: 0,
        variant,
        why: Why::Random {
            draw: 0,
            total: 100,
        },
    };
    let mut chosen = [0u32; 2];
    for c in 0..200 {
        let pin = Pin::Client(format!("c{c}"));
        let one = pinned_variant(drawn(0), route, Some(&pin)).variant;
        let two = pinned_variant(drawn(1), route, Some(&pin)).variant;
        assert_eq!(one, two, "client c{c}");
        chosen[one] += 1;
    }
    assert!(chosen.iter().all(|&n| n > 50), "{chosen:?}");
    let pin = Pin::Endpoint("http://127.0.0.1:2".into());
    assert_eq!(pinned_variant(drawn(0), route, Some(&pin)).variant, 1);
    // The pin header's choice is kept.
    let pinned = Decision {
        why: Why::Pinned,
        ..drawn(0)
    };
    assert_eq!(pinned_variant(pinned.clone(), route, Some(&pin)), pinned);
    assert_eq!(pinned_variant(drawn(0), route, None), drawn(0));
}
