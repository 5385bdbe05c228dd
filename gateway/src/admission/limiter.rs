//! Token and request rate limits per tenant, counted by this gateway replica.
//!
//! Each tenant has a token bucket per limit ([`Bucket`]). A request takes its estimate
//! ([`Estimate`]) before it is sent; the [`Charge`] it holds gives back the difference when the
//! response ends and its real usage is known, and gives back everything when it fails before
//! any token was produced.
//!
//! The tenants' state is a map split in 16 shards, each behind its own mutex held for a few
//! arithmetic operations; at most `max_tenants` tenants are tracked (the tenant comes from the
//! client). A new tenant over the bound first forgets tenants whose buckets are full (forgetting
//! them changes nothing), else the one unused for longest.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::bucket::Bucket;
use super::charge::{Charge, Refund};
use super::estimate::Estimate;
use super::reply::{RateHeaders, Window};

const SHARDS: usize = 16;
/// Longest tenant key kept; a longer one is cut (at a character boundary).
pub const MAX_KEY_BYTES: usize = 128;

/// A tenant's limits, already divided by the replica count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub tokens: Option<u64>,
    pub requests: Option<u64>,
}

impl Limits {
    pub fn new(l: &infergate_config::Limit, replicas: u32) -> Limits {
        let div = |v: u64| (v / u64::from(replicas.max(1))).max(1);
        Limits {
            tokens: l.tokens_per_minute.map(div),
            requests: l.requests_per_minute.map(div),
        }
    }

    fn is_none(&self) -> bool {
        self.tokens.is_none() && self.requests.is_none()
    }
}

/// Which limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exceeded {
    Requests,
    Tokens,
}

impl Exceeded {
    pub fn as_str(self) -> &'static str {
        match self {
            Exceeded::Requests => "requests",
            Exceeded::Tokens => "tokens",
        }
    }
}

/// A refused request: which limit, the headers, and when to retry.
#[derive(Debug)]
pub struct Refusal {
    pub exceeded: Exceeded,
    pub limit: u64,
    pub requested: u64,
    pub retry_after: Duration,
    pub headers: RateHeaders,
}

struct Entry {
    tokens: Option<Bucket>,
    requests: Option<Bucket>,
    used: Instant,
}

impl Entry {
    fn refill(&mut self, limits: Limits, now: Instant) {
        refill(&mut self.tokens, limits.tokens, now);
        refill(&mut self.requests, limits.requests, now);
    }

    fn idle(&self, limits: Limits) -> bool {
        let full = |b: &Option<Bucket>, l: Option<u64>| match (b, l) {
            (Some(b), Some(l)) => b.is_full(l),
            _ => true,
        };
        full(&self.tokens, limits.tokens) && full(&self.requests, limits.requests)
    }
}

fn refill(b: &mut Option<Bucket>, limit: Option<u64>, now: Instant) {
    match (b.as_mut(), limit) {
        (Some(b), Some(l)) => b.refill(l, now),
        (None, Some(l)) => *b = Some(Bucket::full(l, now)),
        (_, None) => *b = None,
    }
}

/// The tenants' buckets. Kept across reloads while the key's source stays the same.
pub struct Tenants {
    shards: Vec<Mutex<HashMap<Box<str>, Entry>>>,
    per_shard: usize,
    hasher: RandomState,
}

impl Tenants {
    pub fn new(max_tenants: u32) -> Tenants {
        Tenants {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: (max_tenants as usize).div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, HashMap<Box<str>, Entry>> {
        let i = (self.hasher.hash_one(key) as usize) % self.shards.len();
        self.shards[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tenants tracked now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes one request and `estimate` tokens from `key`'s buckets, or says which limit
    /// refuses them.
    pub fn admit(
        self: &Arc<Self>,
        key: &str,
        limits: Limits,
        estimate: Estimate,
        now: Instant,
    ) -> Result<(Option<Charge>, RateHeaders), Box<Refusal>> {
        if limits.is_none() {
            return Ok((None, RateHeaders::default()));
        }
        let tokens = estimate.total();
        let mut shard = self.shard(key);
        if !shard.contains_key(key) && shard.len() >= self.per_shard {
            evict(&mut shard, limits, now);
        }
        let entry = shard.entry(key.into()).or_insert_with(|| Entry {
            tokens: None,
            requests: None,
            used: now,
        });
        entry.refill(limits, now);
        entry.used = now;
        let checks = [
            (
                Exceeded::Requests,
                entry.requests.as_ref(),
                limits.requests,
                1,
            ),
            (
                Exceeded::Tokens,
                entry.tokens.as_ref(),
                limits.tokens,
                tokens,
            ),
        ];
        for (exceeded, bucket, limit, n) in checks {
            if let (Some(b), Some(l)) = (bucket, limit) {
                if !b.allows(n, l) {
                    let headers = headers(entry, limits);
                    return Err(Box::new(Refusal {
                        exceeded,
                        limit: l,
                        requested: n,
                        retry_after: b.wait_for(n, l),
                        headers,
                    }));
                }
            }
        }
        if let Some(b) = entry.requests.as_mut() {
            b.take(1);
        }
        let charge = entry.tokens.as_mut().map(|b| {
            b.take(tokens);
            Charge::new(
                self.clone() as Arc<dyn Refund>,
                key,
                limits.tokens.unwrap_or(0),
                estimate,
            )
        });
        Ok((charge, headers(entry, limits)))
    }
}

impl Refund for Tenants {
    fn adjust(&self, key: &str, limit: u64, delta: i64) {
        let now = Instant::now();
        let mut shard = self.shard(key);
        if let Some(b) = shard.get_mut(key).and_then(|e| e.tokens.as_mut()) {
            b.refill(limit, now);
            b.adjust(delta, limit);
        }
    }
}

/// Makes room for one tenant: forgets the idle ones (full buckets), else the one unused for
/// longest.
fn evict(shard: &mut HashMap<Box<str>, Entry>, limits: Limits, now: Instant) {
    let before = shard.len();
    shard.retain(|_, e| {
        e.refill(limits, now);
        !e.idle(limits)
    });
    if shard.len() < before {
        return;
    }
    let oldest = shard
        .iter()
        .min_by_key(|(_, e)| e.used)
        .map(|(k, _)| k.clone());
    if let Some(k) = oldest {
        shard.remove(&k);
    }
}

fn headers(e: &Entry, limits: Limits) -> RateHeaders {
    let window = |b: &Option<Bucket>, l: Option<u64>| match (b, l) {
        (Some(b), Some(l)) => Some(Window {
            limit: l,
            remaining: b.remaining(),
            reset: b.until_full(l),
        }),
        _ => None,
    };
    RateHeaders {
        requests: window(&e.requests, limits.requests),
        tokens: window(&e.tokens, limits.tokens),
    }
}

/// `key` cut to [`MAX_KEY_BYTES`] at a character boundary.
pub fn bounded_key(key: &str) -> &str {
    if key.len() <= MAX_KEY_BYTES {
        return key;
    }
    let mut end = MAX_KEY_BYTES;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

#[cfg(test)]
#[path = "limiter_tests.rs"]
mod tests;
