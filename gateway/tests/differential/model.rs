//! `extract_model` against `serde_json`: where `serde_json` reads the body as an object with one
//! top-level `model` whose value is a non-empty string M, the reader returns M; where it reads an
//! object with another `model` (none, empty, not a string), the reader says it is missing; two
//! or more top-level `model` keys (after unescaping) are refused as duplicates; whatever
//! `serde_json` refuses, or reads as something other than an object, is malformed.

use crate::fuzz_model::{check, oracle, read, Read as Expect};
use crate::gen::{run_cases, Gen, KEYS};

/// Cases run by default (under a second in a debug build).
const CASES: u64 = 40_000;

/// A request body: an object with random members and 0 to 3 `model` keys of any type.
fn body(g: &mut Gen) -> Vec<u8> {
    let mut out = Vec::new();
    g.ws(&mut out);
    let bad = if g.chance(0.3) { 0.05 } else { 0.0 };
    if g.chance(0.05) {
        g.value(&mut out, 3, bad);
        return out;
    }
    let models = match g.below(10) {
        0 | 1 => 0,
        2..=7 => 1,
        8 => 2,
        _ => 3,
    };
    let others = g.below(5);
    let mut slots: Vec<bool> = (0..models + others).map(|i| i < models).collect();
    for i in (1..slots.len()).rev() {
        let j = g.below(i + 1);
        slots.swap(i, j);
    }
    out.push(b'{');
    for (i, is_model) in slots.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        g.ws(&mut out);
        if is_model {
            out.push(b'"');
            let spelled = g.pick(&["model", "model", "model", "mod\\u0065l", "\\u006dodel"]);
            out.extend_from_slice(spelled.as_bytes());
            out.push(b'"');
        } else {
            g.key(&mut out);
        }
        g.ws(&mut out);
        out.push(b':');
        g.ws(&mut out);
        if is_model && g.chance(0.7) {
            g.string(&mut out, bad);
        } else {
            g.value(&mut out, 3, bad);
        }
        g.ws(&mut out);
    }
    out.push(b'}');
    g.ws(&mut out);
    if g.chance(0.15) {
        g.mutate(&mut out);
    }
    out
}

#[test]
fn extract_model_agrees_with_serde_json() {
    let mut seen = [0u64; 4];
    run_cases("extract_model", CASES, |g| {
        let body = body(g);
        let want = oracle(&body);
        seen[match want {
            Expect::Model(_) => 0,
            Expect::Missing => 1,
            Expect::Duplicate => 2,
            Expect::Malformed => 3,
        }] += 1;
        let why = check(&body).err();
        (body, why)
    });
    eprintln!("model, serde_json saw [model, missing, duplicate, malformed]: {seen:?}");
    // Every outcome is exercised, each many times.
    if std::env::var("INFERGATE_DIFF_SEED").is_err() {
        assert!(seen.iter().all(|&n| n > 500), "{seen:?}");
    }
}

/// Inputs on which the reader and `serde_json` once disagreed, and the duplicate cases.
#[test]
fn regressions() {
    let cases: &[(&str, &[u8], Expect)] = &[
        (
            "duplicate, first wins vs last wins",
            br#"{"model":"demo","model":"nope"}"#,
            Expect::Duplicate,
        ),
        (
            "duplicate after unescaping",
            br#"{"mod\u0065l":"demo","model":"demo"}"#,
            Expect::Duplicate,
        ),
        (
            "IgnoredAny skipped invalid UTF-8",
            b"{\"model\":\"demo\",\"x\":\"\xff\"}",
            Expect::Malformed,
        ),
        (
            "IgnoredAny skipped a lone surrogate",
            br#"{"model":"demo","x":["\ud800"]}"#,
            Expect::Malformed,
        ),
        (
            "IgnoredAny skipped a number out of range",
            br#"{"x":{"y":-1e400},"model":"demo"}"#,
            Expect::Malformed,
        ),
        (
            "nested duplicates are not top-level",
            br#"{"x":{"model":1,"model":2},"model":"demo"}"#,
            Expect::Model("demo".into()),
        ),
    ];
    for (name, body, want) in cases {
        assert_eq!(&oracle(body), want, "oracle, {name}");
        assert_eq!(&read(body).unwrap(), want, "{name}");
    }
    assert_eq!(KEYS.iter().filter(|k| k.contains("od")).count(), 9);
}
