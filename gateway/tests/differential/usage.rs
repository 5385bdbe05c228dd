//! `JsonUsageScanner` against `serde_json`, the body fed in random frames: the scanner reports
//! the `usage` that `serde_json` reads from the top-level object (the last top-level `usage`
//! key, compared after unescaping), read as `Usage`; none where that value is not an object,
//! does not read as `Usage`, or is longer than `MAX_USAGE` bytes. On bodies `serde_json` refuses,
//! the scanner only has to give the same answer however the body is split.

use infergate_gateway::observe::{JsonUsageScanner, Usage, MAX_USAGE};
use rand::Rng;
use serde_json::Value;

use crate::gen::{frames, run_cases, Gen};

/// Cases run by default (about a second in a debug build).
const CASES: u64 = 10_000;

/// What `serde_json` reads; `last_raw` is the length of the last top-level usage value's text.
fn oracle(body: &[u8], last_raw: Option<usize>) -> Option<Option<Usage>> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let usage = match map.get("usage") {
        Some(v @ Value::Object(_)) if last_raw.is_some_and(|n| n <= MAX_USAGE) => {
            serde_json::from_value::<Usage>(v.clone()).ok()
        }
        _ => None,
    };
    Some(usage)
}

fn scan(frames: &[&[u8]]) -> Option<Usage> {
    let mut s = JsonUsageScanner::default();
    for f in frames {
        s.observe(f);
    }
    s.usage
}

/// A usage object: the counts (of the right type or not, sometimes twice), other fields,
/// sometimes padding past `MAX_USAGE`.
fn usage_object(g: &mut Gen, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut fields: Vec<Vec<u8>> = Vec::new();
    for key in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        for _ in 0..[0, 1, 1, 1, 1, 1, 2][g.below(7)] {
            let mut f = format!("\"{key}\":").into_bytes();
            g.ws(&mut f);
            match g.below(12) {
                0 => f.extend_from_slice(b"null"),
                1 => g.value(&mut f, 1, 0.0),
                _ => f.extend_from_slice(g.rng.random_range(0..100_000u64).to_string().as_bytes()),
            }
            fields.push(f);
        }
    }
    if g.chance(0.3) {
        let mut f = b"\"completion_tokens_details\":".to_vec();
        g.object(&mut f, 2, 0.0);
        fields.push(f);
    }
    if g.chance(0.03) {
        let mut f = b"\"pad\":\"".to_vec();
        f.resize(
            f.len() + g.rng.random_range(MAX_USAGE - 100..MAX_USAGE + 100),
            b'p',
        );
        f.push(b'"');
        fields.push(f);
    }
    for i in (1..fields.len()).rev() {
        let j = g.below(i + 1);
        fields.swap(i, j);
    }
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        g.ws(out);
        out.extend_from_slice(f);
    }
    out.push(b'}');
}

/// A completion response with 0 to 2 top-level `usage` keys, `usage` keys nested in choices,
/// and contents that quote `"usage"`. Returns the body and the length of the last top-level
/// usage value's text.
fn response(g: &mut Gen) -> (Vec<u8>, Option<usize>) {
    let mut members: Vec<(Vec<u8>, Vec<u8>, bool)> = Vec::new();
    let mut id = Vec::new();
    g.string(&mut id, 0.0);
    members.push((b"\"id\"".to_vec(), id, false));
    let mut choices = b"[".to_vec();
    for i in 0..g.below(3) {
        if i > 0 {
            choices.push(b',');
        }
        choices.extend_from_slice(b"{\"message\":{\"content\":");
        g.string(&mut choices, 0.0);
        choices.push(b'}');
        if g.chance(0.3) {
            choices.extend_from_slice(b",\"usage\":");
            usage_object(g, &mut choices);
        }
        choices.push(b'}');
    }
    choices.push(b']');
    members.push((b"\"choices\"".to_vec(), choices, false));
    if g.chance(0.2) {
        let mut v = Vec::new();
        g.value(&mut v, 3, 0.0);
        members.push((b"\"x\"".to_vec(), v, false));
    }
    for _ in 0..[0, 1, 1, 1, 2][g.below(5)] {
        let key: &str = g.pick(&["\"usage\"", "\"usage\"", "\"us\\u0061ge\""]);
        let mut v = Vec::new();
        match g.below(8) {
            0 => v.extend_from_slice(b"null"),
            1 => g.value(&mut v, 2, 0.0),
            _ => usage_object(g, &mut v),
        }
        members.push((key.as_bytes().to_vec(), v, true));
    }
    if g.chance(0.2) {
        let mut v = Vec::new();
        usage_object(g, &mut v);
        let key: &str = g.pick(&[
            "\"\\\"usage\"",
            "\"Usage\"",
            "\"usage \"",
            "\"x\\\\\\\"usage\"",
        ]);
        members.push((key.as_bytes().to_vec(), v, false));
    }
    for i in (1..members.len()).rev() {
        let j = g.rng.random_range(0..=i);
        members.swap(i, j);
    }
    let mut out = Vec::new();
    let mut last_raw = None;
    g.ws(&mut out);
    out.push(b'{');
    for (i, (k, v, is_usage)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        g.ws(&mut out);
        out.extend_from_slice(k);
        g.ws(&mut out);
        out.push(b':');
        g.ws(&mut out);
        out.extend_from_slice(v);
        g.ws(&mut out);
        if *is_usage {
            last_raw = Some(v.len());
        }
    }
    out.push(b'}');
    g.ws(&mut out);
    (out, last_raw)
}

#[test]
fn usage_scanner_agrees_with_serde_json_in_any_split() {
    let (mut read, mut some) = (0u64, 0u64);
    run_cases("JsonUsageScanner", CASES, |g| {
        let (mut body, last_raw) = response(g);
        let damaged = g.chance(0.1);
        if damaged {
            g.mutate(&mut body);
        }
        let cuts = g.splits(body.len());
        let got = scan(&frames(&body, &cuts));
        let whole = scan(&[&body]);
        let want = if damaged {
            None
        } else {
            oracle(&body, last_raw)
        };
        let why = match want {
            Some(want) => {
                read += 1;
                some += u64::from(want.is_some());
                (got != want)
                    .then(|| format!("serde_json: {want:?}, scanner: {got:?} (cuts {cuts:?})"))
            }
            None => (got != whole)
                .then(|| format!("whole: {whole:?}, in frames: {got:?} (cuts {cuts:?})")),
        };
        (body, why)
    });
    eprintln!("usage: {read} bodies compared with serde_json, {some} with a usage");
    if std::env::var("INFERGATE_DIFF_SEED").is_err() {
        assert!(some > CASES / 4 && read > CASES / 2, "{read} {some}");
    }
}

/// Bodies on which the scanner that searched the bytes `"usage"` disagreed with `serde_json`.
#[test]
fn regressions() {
    let u = |p, c| {
        Some(Usage {
            prompt_tokens: p,
            completion_tokens: c,
        })
    };
    let cases: &[(&str, &[u8], Option<Usage>)] = &[
        (
            "a usage key nested in a choice, after the top-level one",
            br#"{"usage":{"prompt_tokens":1,"completion_tokens":2},"choices":[{"usage":{"prompt_tokens":99,"completion_tokens":99}}]}"#,
            u(Some(1), Some(2)),
        ),
        (
            "an escaped usage key",
            br#"{"us\u0061ge":{"prompt_tokens":1,"completion_tokens":2}}"#,
            u(Some(1), Some(2)),
        ),
        (
            "a later top-level usage that is null",
            br#"{"usage":{"prompt_tokens":1},"usage":null}"#,
            None,
        ),
        (
            "a repeated field in the usage object",
            br#"{"usage":{"prompt_tokens":1,"prompt_tokens":3}}"#,
            u(Some(3), None),
        ),
        (
            "a key that ends with an escaped quote and usage",
            br#"{"\"usage":{"prompt_tokens":5}}"#,
            None,
        ),
    ];
    for (name, body, want) in cases {
        let last_raw = Some(body.len());
        assert_eq!(oracle(body, last_raw), Some(*want), "oracle, {name}");
        for cut in 0..=body.len() {
            let (a, b) = body.split_at(cut);
            assert_eq!(scan(&[a, b]), *want, "{name}, cut at {cut}");
        }
    }
}
