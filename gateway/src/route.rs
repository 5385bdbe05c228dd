//! Routes per model: ordered rules that match on headers, cookies and labels derived from the
//! request, and choose a variant (a backend, optionally narrowed to some of its endpoints) by
//! pin, sticky key or weighted random.
//!
//! # Sticky assignment
//!
//! With a sticky key, the variant is chosen by weighted rendezvous hashing: for each variant `v`
//! with weight `w_v > 0`, `u_v = hash(key, v)` is a uniform number in (0, 1) and its score is
//! `-ln(u_v) / w_v`; the lowest score wins. Each score is an exponential random variable with
//! rate `w_v`, so variant `v` wins with probability `w_v / Σw`. The choice is a pure function of
//! the key, the variant names and the weights: the same key always gets the same variant, on
//! every gateway replica and across restarts (the hash is fixed: FNV-1a 64 with a SplitMix64
//! finaliser). Raising one variant's weight lowers only that variant's score, so a key can only
//! move *to* it; lowering it can only move keys away from it. Keys never move between the other
//! variants.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use rand::Rng;
use tokio::sync::Semaphore;

use crate::backend::BackendRt;
use crate::metrics::RouteMetrics;

/// Where a value comes from in a request.
#[derive(Clone, Debug)]
pub enum Source {
    Header(HeaderName),
    Cookie(Box<str>),
    /// A label of `request_labels`, by index.
    Label(usize),
}

#[derive(Debug)]
pub enum Cond {
    Exact(Box<str>),
    Prefix(Box<str>),
    Regex(regex_lite::Regex),
    Present(bool),
}

#[derive(Debug)]
pub struct Matcher {
    pub source: Source,
    pub cond: Cond,
}

/// The labels of `request_labels`, in order.
#[derive(Debug, Default)]
pub struct LabelSources(pub Vec<(Box<str>, Source)>);

/// A request as routing sees it.
pub struct RequestView<'a> {
    pub headers: &'a HeaderMap,
    pub labels: &'a LabelSources,
}

impl RequestView<'_> {
    fn value(&self, src: &Source) -> Option<&str> {
        match src {
            Source::Header(h) => self.headers.get(h).and_then(|v| v.to_str().ok()),
            Source::Cookie(name) => cookie(self.headers, name),
            Source::Label(i) => {
                let (_, src) = self.labels.0.get(*i)?;
                match src {
                    Source::Label(_) => None,
                    other => self.value(other),
                }
            }
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.trim_matches('"'))
        })
}

impl Matcher {
    pub fn holds(&self, req: &RequestView<'_>) -> bool {
        let v = req.value(&self.source);
        match &self.cond {
            Cond::Present(want) => v.is_some() == *want,
            Cond::Exact(x) => v == Some(x.as_ref()),
            Cond::Prefix(p) => v.is_some_and(|v| v.starts_with(p.as_ref())),
            Cond::Regex(re) => v.is_some_and(|v| re.is_match(v)),
        }
    }
}

/// One version of a model.
pub struct Variant {
    pub name: Box<str>,
    /// The `x-infergate-variant` response header value.
    pub header: HeaderValue,
    pub backend: Arc<BackendRt>,
    /// Indices of the backend's endpoints that serve this variant.
    pub members: Vec<usize>,
    /// Metric handles, one per member.
    pub metrics: Vec<RouteMetrics>,
    /// Metric handles for shadow copies sent to this variant (variant label `shadow:<name>`);
    /// empty when no rule shadows to it.
    pub shadow_metrics: Vec<RouteMetrics>,
    /// For outcomes with no endpoint.
    pub unrouted: RouteMetrics,
}

/// Shadow traffic of a rule.
pub struct ShadowRt {
    pub variant: usize,
    pub percent: f64,
    pub permits: Arc<Semaphore>,
}

/// A variant in a rule's split.
#[derive(Clone, Debug)]
pub struct SplitRt {
    pub variant: usize,
    pub name: Box<str>,
    pub weight: u32,
}

/// A routing rule.
pub struct Rule {
    pub name: Box<str>,
    pub matchers: Vec<Matcher>,
    /// Variants with a weight above 0, in config order.
    pub split: Vec<SplitRt>,
    pub total: u64,
    pub sticky: Option<Source>,
    pub allow_pin: bool,
    pub shadow: Option<ShadowRt>,
}

/// Why a variant was chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum Why {
    /// The pin header named it.
    Pinned,
    /// By the sticky key, whose hash is `key_hash`: the split variant with the lowest
    /// [`score`] wins.
    Sticky { key_hash: u64 },
    /// The rule had a sticky key but the request did not carry it: weighted random.
    RandomNoKey { draw: u64, total: u64 },
    /// Weighted random: `draw` in `0..total`.
    Random { draw: u64, total: u64 },
    /// The split has one variant.
    Only,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub rule: usize,
    pub variant: usize,
    pub why: Why,
}

/// Where one model's traffic goes.
pub struct ModelRoute {
    pub name: Box<str>,
    pub variants: Vec<Variant>,
    pub rules: Vec<Rule>,
    /// The model's config, for `explain` and `/admin/routes`.
    pub config: infergate_config::Model,
}

impl ModelRoute {
    /// The first rule whose matchers all hold, and the variant it chooses. `None` when no rule
    /// matches.
    pub fn decide(&self, req: &RequestView<'_>, pin_header: &HeaderName) -> Option<Decision> {
        let (rule_idx, rule) = self
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.matchers.iter().all(|m| m.holds(req)))?;
        if rule.allow_pin {
            if let Some(pin) = req.headers.get(pin_header).and_then(|v| v.to_str().ok()) {
                if let Some(v) = self.variants.iter().position(|v| v.name.as_ref() == pin) {
                    return Some(Decision {
                        rule: rule_idx,
                        variant: v,
                        why: Why::Pinned,
                    });
                }
            }
        }
        let (variant, why) = choose(rule, req);
        Some(Decision {
            rule: rule_idx,
            variant,
            why,
        })
    }
}

/// The variant a rule chooses for a request (pins aside).
pub fn choose(rule: &Rule, req: &RequestView<'_>) -> (usize, Why) {
    if let [only] = rule.split.as_slice() {
        return (only.variant, Why::Only);
    }
    if let Some(src) = &rule.sticky {
        if let Some(key) = req.value(src) {
            let key_hash = hash_bytes(key.as_bytes());
            let best = rule
                .split
                .iter()
                .map(|s| (s.variant, score(key_hash, &s.name, s.weight)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(0, |s| s.0);
            return (best, Why::Sticky { key_hash });
        }
        let (v, draw) = weighted_random(rule);
        return (
            v,
            Why::RandomNoKey {
                draw,
                total: rule.total,
            },
        );
    }
    let (v, draw) = weighted_random(rule);
    (
        v,
        Why::Random {
            draw,
            total: rule.total,
        },
    )
}

fn weighted_random(rule: &Rule) -> (usize, u64) {
    let draw = rand::rng().random_range(0..rule.total.max(1));
    (pick_by_draw(&rule.split, draw), draw)
}

/// The variant whose cumulative weight range holds `draw`.
pub fn pick_by_draw(split: &[SplitRt], draw: u64) -> usize {
    let mut acc = 0u64;
    for s in split {
        acc += u64::from(s.weight);
        if draw < acc {
            return s.variant;
        }
    }
    split.last().map_or(0, |s| s.variant)
}

/// The rendezvous score of a variant for a key: `-ln(u) / weight`, `u` uniform in (0, 1)
/// from the key and the variant's name.
pub fn score(key_hash: u64, variant: &str, weight: u32) -> f64 {
    let h = mix(key_hash ^ hash_bytes(variant.as_bytes()).rotate_left(17));
    // 53 random bits, centred in their interval: never 0 or 1.
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -u.ln() / f64::from(weight.max(1))
}

/// FNV-1a 64, then SplitMix64's finaliser: stable across builds and machines.
pub fn hash_bytes(b: &[u8]) -> u64 {
    mix(fnv1a64(b))
}

/// FNV-1a, 64 bits.
pub fn fnv1a64(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &c in b {
        h ^= u64::from(c);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
