use super::*;
use rand::{RngCore, SeedableRng};

fn rule(weights: &[(&str, u32)], sticky: Option<Source>) -> Rule {
    let split: Vec<SplitRt> = weights
        .iter()
        .enumerate()
        .filter(|(_, (_, w))| *w > 0)
        .map(|(i, (n, w))| SplitRt {
            variant: i,
            name: (*n).into(),
            weight: *w,
        })
        .collect();
    Rule {
        name: "r".into(),
        matchers: Vec::new(),
        total: split.iter().map(|s| u64::from(s.weight)).sum(),
        split,
        sticky,
        allow_pin: false,
        shadow: None,
    }
}

fn view<'a>(headers: &'a HeaderMap, labels: &'a LabelSources) -> RequestView<'a> {
    RequestView { headers, labels }
}

fn user(id: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-user-id", HeaderValue::from_str(id).unwrap());
    h
}

/// Chi-square statistic of observed counts against expected shares.
fn chi_square(observed: &[u64], shares: &[f64]) -> f64 {
    let n: u64 = observed.iter().sum();
    observed
        .iter()
        .zip(shares)
        .map(|(&o, &p)| {
            let e = p * n as f64;
            (o as f64 - e).powi(2) / e
        })
        .sum()
}

/// Critical values of chi-square at significance 0.001 for 1 and 2 degrees of freedom.
const CHI2_001: [f64; 2] = [10.828, 13.816];

#[test]
fn weighted_random_split_is_accurate() {
    let r = rule(&[("stable", 90), ("canary", 10)], None);
    let labels = LabelSources::default();
    let h = HeaderMap::new();
    let mut counts = [0u64; 2];
    for _ in 0..10_000 {
        counts[choose(&r, &view(&h, &labels)).0] += 1;
    }
    let x2 = chi_square(&counts, &[0.9, 0.1]);
    assert!(x2 < CHI2_001[0], "chi-square {x2} for {counts:?}");
}

#[test]
fn sticky_split_is_accurate_over_keys() {
    let src = Source::Header(HeaderName::from_static("x-user-id"));
    let r = rule(&[("a", 50), ("b", 30), ("c", 20)], Some(src));
    let labels = LabelSources::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut counts = [0u64; 3];
    for _ in 0..10_000 {
        let h = user(&format!("user-{}", rng.next_u64()));
        counts[choose(&r, &view(&h, &labels)).0] += 1;
    }
    let x2 = chi_square(&counts, &[0.5, 0.3, 0.2]);
    assert!(x2 < CHI2_001[1], "chi-square {x2} for {counts:?}");
}

#[test]
fn sticky_keys_always_get_the_same_variant() {
    let src = Source::Header(HeaderName::from_static("x-user-id"));
    let r = rule(&[("stable", 90), ("canary", 10)], Some(src));
    let labels = LabelSources::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for _ in 0..2_000 {
        let h = user(&format!("u{}", rng.next_u32()));
        let first = choose(&r, &view(&h, &labels)).0;
        for _ in 0..5 {
            assert_eq!(choose(&r, &view(&h, &labels)).0, first);
        }
    }
    // Stable across builds and machines: a fixed key has a fixed hash.
    assert_eq!(hash_bytes(b"alice"), hash_bytes(b"alice"));
    assert_ne!(hash_bytes(b"alice"), hash_bytes(b"alicf"));
}

#[test]
fn raising_the_canary_weight_only_moves_keys_to_it() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let labels = LabelSources::default();
    let keys: Vec<HeaderMap> = (0..2_000)
        .map(|i| user(&format!("user-{i}-{}", rng.next_u32())))
        .collect();
    for _trial in 0..50 {
        // Random starting weights for three variants, then a random increase of the canary.
        let w_stable = rng.random_range(1..1000);
        let w_other = rng.random_range(0..1000);
        let w_canary = rng.random_range(0..1000);
        let raise = rng.random_range(1..1000);
        let src = || Some(Source::Header(HeaderName::from_static("x-user-id")));
        let before = rule(
            &[
                ("stable", w_stable),
                ("other", w_other),
                ("canary", w_canary),
            ],
            src(),
        );
        let after = rule(
            &[
                ("stable", w_stable),
                ("other", w_other),
                ("canary", w_canary + raise),
            ],
            src(),
        );
        let mut moved = 0;
        for h in &keys {
            let b = choose(&before, &view(h, &labels)).0;
            let a = choose(&after, &view(h, &labels)).0;
            if a != b {
                assert_eq!(a, 2, "a key moved from {b} to {a}, not to the canary");
                moved += 1;
            }
        }
        // And lowering it back returns exactly those keys.
        let mut returned = 0;
        for h in &keys {
            let a = choose(&after, &view(h, &labels)).0;
            let b = choose(&before, &view(h, &labels)).0;
            if a != b {
                assert_eq!(a, 2);
                returned += 1;
            }
        }
        assert_eq!(moved, returned);
    }
}

#[test]
fn keys_move_in_proportion_to_the_weight_change() {
    let labels = LabelSources::default();
    let src = || Some(Source::Header(HeaderName::from_static("x-user-id")));
    let w10 = rule(&[("stable", 90), ("canary", 10)], src());
    let w50 = rule(&[("stable", 50), ("canary", 50)], src());
    let (mut c10, mut c50) = (0, 0);
    for i in 0..10_000 {
        let h = user(&format!("k{i}"));
        c10 += usize::from(choose(&w10, &view(&h, &labels)).0 == 1);
        c50 += usize::from(choose(&w50, &view(&h, &labels)).0 == 1);
    }
    assert!((900..=1100).contains(&c10), "{c10}");
    assert!((4800..=5200).contains(&c50), "{c50}");
}

#[test]
fn without_a_key_a_sticky_rule_is_random() {
    let src = Source::Cookie("uid".into());
    let r = rule(&[("a", 1), ("b", 1)], Some(src));
    let labels = LabelSources::default();
    let h = HeaderMap::new();
    let (_, why) = choose(&r, &view(&h, &labels));
    assert!(matches!(why, Why::RandomNoKey { total: 2, .. }));
    let mut with_cookie = HeaderMap::new();
    with_cookie.insert(
        http::header::COOKIE,
        HeaderValue::from_static("theme=dark; uid=42"),
    );
    assert!(matches!(
        choose(&r, &view(&with_cookie, &labels)).1,
        Why::Sticky { .. }
    ));
}

#[test]
fn matchers_on_headers_cookies_and_labels() {
    let mut h = HeaderMap::new();
    h.insert("x-tenant-id", HeaderValue::from_static("acme-eu"));
    h.append(
        http::header::COOKIE,
        HeaderValue::from_static("a=1; beta=\"yes\""),
    );
    let labels = LabelSources(vec![(
        "tenant".into(),
        Source::Header(HeaderName::from_static("x-tenant-id")),
    )]);
    let req = view(&h, &labels);
    let m = |source: Source, cond: Cond| Matcher { source, cond }.holds(&req);
    let tenant = || Source::Header(HeaderName::from_static("x-tenant-id"));
    assert!(m(tenant(), Cond::Exact("acme-eu".into())));
    assert!(!m(tenant(), Cond::Exact("acme".into())));
    assert!(m(tenant(), Cond::Prefix("acme".into())));
    assert!(m(
        tenant(),
        Cond::Regex(regex_lite::Regex::new("^(?:acme-(eu|us))$").unwrap())
    ));
    assert!(!m(
        tenant(),
        Cond::Regex(regex_lite::Regex::new("^(?:acme)$").unwrap())
    ));
    assert!(m(tenant(), Cond::Present(true)));
    assert!(m(
        Source::Header(HeaderName::from_static("x-none")),
        Cond::Present(false)
    ));
    assert!(m(Source::Cookie("beta".into()), Cond::Exact("yes".into())));
    assert!(m(Source::Cookie("a".into()), Cond::Exact("1".into())));
    assert!(!m(Source::Cookie("b".into()), Cond::Present(true)));
    assert!(m(Source::Label(0), Cond::Exact("acme-eu".into())));
    assert!(!m(Source::Label(3), Cond::Present(true)));
}

#[test]
fn pick_by_draw_covers_the_weights() {
    let r = rule(&[("a", 3), ("b", 0), ("c", 2)], None);
    let got: Vec<usize> = (0..5).map(|d| pick_by_draw(&r.split, d)).collect();
    assert_eq!(got, [0, 0, 0, 2, 2]);
}
