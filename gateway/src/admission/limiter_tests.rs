#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::*;

fn tokens(n: u64) -> Limits {
    Limits {
        tokens: Some(n),
        requests: None,
    }
}

fn est(prompt: u64, output: u64) -> Estimate {
    Estimate { prompt, output }
}

/// Tokens left for `key`: what a 1-token request's headers report after it is given back.
fn left(t: &Arc<Tenants>, key: &str, limits: Limits) -> u64 {
    let (charge, h) = t.admit(key, limits, est(0, 0), Instant::now()).unwrap();
    drop(charge);
    h.tokens.unwrap().remaining
}

#[tokio::test(start_paused = true)]
async fn the_estimate_is_taken_and_settled_on_the_real_usage() {
    let t = Arc::new(Tenants::new(100));
    let l = tokens(1000);
    let (charge, h) = t.admit("acme", l, est(100, 200), Instant::now()).unwrap();
    let w = h.tokens.unwrap();
    assert_eq!((w.limit, w.remaining), (1000, 700));
    assert!(h.requests.is_none());
    // The response used 50 prompt and 30 completion tokens: 220 come back.
    charge.unwrap().settle(Some(50), Some(30), 30, true);
    assert_eq!(left(&t, "acme", l), 920);
    // More than the estimate: the difference is taken too.
    let (charge, _) = t.admit("acme", l, est(10, 10), Instant::now()).unwrap();
    charge.unwrap().settle(Some(10), Some(400), 0, true);
    assert_eq!(left(&t, "acme", l), 510);
}

#[tokio::test(start_paused = true)]
async fn without_usage_the_charge_keeps_what_the_response_shows() {
    let t = Arc::new(Tenants::new(100));
    let l = tokens(1000);
    let now = Instant::now;
    // A stream without usage: estimated prompt plus the token events seen.
    let (c, _) = t.admit("a", l, est(100, 200), now()).unwrap();
    c.unwrap().settle(None, None, 7, true);
    assert_eq!(left(&t, "a", l), 893);
    // A plain JSON answer without usage: the whole estimate stays.
    let (c, _) = t.admit("b", l, est(100, 200), now()).unwrap();
    c.unwrap().settle(None, None, 0, true);
    assert_eq!(left(&t, "b", l), 700);
    // A failure before any token: everything comes back.
    let (c, _) = t.admit("c", l, est(100, 200), now()).unwrap();
    c.unwrap().settle(None, None, 0, false);
    assert_eq!(left(&t, "c", l), 1000);
    // A charge dropped unsettled (the request never reached an endpoint): the same.
    let (c, _) = t.admit("d", l, est(100, 200), now()).unwrap();
    drop(c);
    assert_eq!(left(&t, "d", l), 1000);
}

#[tokio::test(start_paused = true)]
async fn over_the_limit_is_refused_with_the_time_to_wait_then_refills() {
    let t = Arc::new(Tenants::new(100));
    let l = Limits {
        tokens: Some(600),
        requests: Some(2),
    };
    let (_c1, h) = t.admit("acme", l, est(100, 400), Instant::now()).unwrap();
    assert_eq!(h.requests.unwrap().remaining, 1);
    assert_eq!(h.tokens.unwrap().remaining, 100);
    // 200 tokens are not there: 100 more come in 10 s (600 per minute).
    let r = t
        .admit("acme", l, est(100, 100), Instant::now())
        .err()
        .unwrap();
    assert_eq!(r.exceeded, Exceeded::Tokens);
    assert_eq!((r.limit, r.requested), (600, 200));
    assert_eq!(r.retry_after, Duration::from_secs(10));
    assert_eq!(r.headers.tokens.unwrap().remaining, 100);
    // A refused request takes nothing.
    assert_eq!(r.headers.requests.unwrap().remaining, 1);
    let (_c2, h) = t.admit("acme", l, est(50, 50), Instant::now()).unwrap();
    assert_eq!(h.requests.unwrap().remaining, 0);
    let r = t.admit("acme", l, est(1, 1), Instant::now()).err().unwrap();
    assert_eq!(r.exceeded, Exceeded::Requests);
    assert_eq!(r.retry_after, Duration::from_secs(30));
    // Another tenant has its own buckets.
    assert!(t.admit("other", l, est(1, 1), Instant::now()).is_ok());
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(t.admit("acme", l, est(1, 1), Instant::now()).is_ok());
}

#[tokio::test(start_paused = true)]
async fn no_limit_means_no_state_and_no_headers() {
    let t = Arc::new(Tenants::new(100));
    let (c, h) = t
        .admit("acme", Limits::default(), est(1, 1), Instant::now())
        .unwrap();
    assert!(c.is_none());
    assert_eq!(h, RateHeaders::default());
    assert!(t.is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_number_of_tenants_is_bounded() {
    let t = Arc::new(Tenants::new(32));
    let l = tokens(100);
    for i in 0..500 {
        let (c, _) = t
            .admit(&format!("tenant-{i}"), l, est(10, 10), Instant::now())
            .unwrap();
        c.unwrap().settle(Some(10), Some(10), 10, true);
    }
    // Two per shard.
    assert!(t.len() <= 32, "{} tenants", t.len());
    assert!(t.len() >= SHARDS, "{} tenants", t.len());
}

#[tokio::test(start_paused = true)]
async fn eviction_forgets_idle_tenants_first_then_the_least_recently_used() {
    let l = tokens(600);
    let t0 = Instant::now();
    let entry = |level_used: u64, used: Instant| {
        let mut b = Bucket::full(600, t0);
        b.take(level_used);
        Entry {
            tokens: Some(b),
            requests: None,
            used,
        }
    };
    let mut shard = HashMap::new();
    // "old" was used first but is busy; "idle" was used later and is full again.
    shard.insert(Box::<str>::from("old"), entry(600, t0));
    tokio::time::advance(Duration::from_secs(1)).await;
    shard.insert(Box::<str>::from("idle"), entry(0, Instant::now()));
    shard.insert(Box::<str>::from("busy"), entry(600, Instant::now()));
    evict(&mut shard, l, Instant::now());
    let mut keys: Vec<&str> = shard.keys().map(|k| k.as_ref()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["busy", "old"]);
    // None idle: the least recently used goes.
    evict(&mut shard, l, Instant::now());
    let keys: Vec<&str> = shard.keys().map(|k| k.as_ref()).collect();
    assert_eq!(keys, ["busy"]);
}

#[test]
fn long_keys_are_cut_at_a_character_boundary() {
    let k = "é".repeat(100);
    let b = bounded_key(&k);
    assert!(b.len() <= MAX_KEY_BYTES && b.len() >= MAX_KEY_BYTES - 1);
    assert!(k.starts_with(b));
    assert_eq!(bounded_key("acme"), "acme");
}

#[test]
fn limits_are_divided_by_the_replicas() {
    let l = infergate_config::Limit {
        tokens_per_minute: Some(1000),
        requests_per_minute: Some(1),
    };
    let d = Limits::new(&l, 4);
    assert_eq!((d.tokens, d.requests), (Some(250), Some(1)));
}
