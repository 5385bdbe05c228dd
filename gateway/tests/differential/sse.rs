//! `infergate_wire::sse::SseParser` against a line-by-line reference of what its documentation
//! says it produces, the stream fed in random frames, with small line limits so that long lines
//! are common.
//!
//! The reference: the stream is cut at each `\n` (a last line without one is never read); a line
//! of at most `max_line` bytes is always read, a longer one only when it arrives within one frame
//! (only a partial line is buffered, up to `max_line`). One trailing `\r` is dropped; only
//! `data:` lines count, less one optional space; an empty payload is nothing, `[DONE]` is
//! `Done`; a payload `serde_json` does not read as an object is `Other`; an object with a
//! non-null `error` is `Error` (its `message`, the string, or the JSON text); otherwise it is
//! `Token` when a choice has a non-empty (string or list) `delta.content`,
//! `delta.reasoning_content`, `delta.reasoning`, `delta.tool_calls` or `text`. A `usage`
//! object is kept from any object payload.
//!
//! The generated payloads give the known fields the types servers send (or null), and their
//! other fields valid JSON within serde_json's nesting limit: the reader skips unknown fields
//! without checking them (`IgnoredAny`), so a payload that is valid but for an unknown field
//! (nesting past 128, invalid UTF-8 or a number out of range in it) is read where `serde_json`
//! would refuse it. A known field of another type (a `usage` list, read by position by the
//! derived `Deserialize`) is not generated either.

use infergate_wire::sse::{Event, SseParser, Usage};
use rand::Rng;
use serde_json::Value;

use crate::gen::{frames, run_cases, Gen};

/// Cases run by default (about a second in a debug build).
const CASES: u64 = 5_000;

fn non_empty(v: Option<&Value>) -> bool {
    match v {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        _ => false,
    }
}

fn classify(line: &[u8], usage: &mut Option<Usage>) -> Option<Event> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let data = line.strip_prefix(b"data:")?;
    let data = data.strip_prefix(b" ").unwrap_or(data);
    if data.is_empty() {
        return None;
    }
    if data == b"[DONE]" {
        return Some(Event::Done);
    }
    let Ok(Value::Object(p)) = serde_json::from_slice::<Value>(data) else {
        return Some(Event::Other);
    };
    if let Some(u @ Value::Object(_)) = p.get("usage") {
        *usage = Some(serde_json::from_value(u.clone()).unwrap());
    }
    match p.get("error") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => return Some(Event::Error(s.clone())),
        Some(e) => {
            let msg = match e.get("message") {
                Some(Value::String(s)) => s.clone(),
                _ => e.to_string(),
            };
            return Some(Event::Error(msg));
        }
    }
    let choices = p.get("choices").and_then(Value::as_array);
    let token = choices.into_iter().flatten().any(|c| {
        let d = c.get("delta");
        non_empty(c.get("text"))
            || ["content", "reasoning_content", "reasoning", "tool_calls"]
                .iter()
                .any(|f| non_empty(d.and_then(|d| d.get(f))))
    });
    Some(if token { Event::Token } else { Event::Other })
}

fn reference(stream: &[u8], cuts: &[usize], max_line: usize) -> (Vec<Event>, Option<Usage>) {
    let (mut events, mut usage) = (Vec::new(), None);
    let mut start = 0;
    for (nl, _) in stream.iter().enumerate().filter(|(_, &b)| b == b'\n') {
        // The frame that holds the newline starts at the last cut at or before it.
        let frame_start = cuts.iter().copied().filter(|&c| c <= nl).max().unwrap_or(0);
        if nl - start <= max_line || start >= frame_start {
            events.extend(classify(&stream[start..nl], &mut usage));
        }
        start = nl + 1;
    }
    (events, usage)
}

fn parse(frames: &[&[u8]], max_line: usize) -> (Vec<Event>, Option<Usage>) {
    let mut p = SseParser::with_max_line(max_line);
    let mut events = Vec::new();
    for f in frames {
        p.feed(f, |e| events.push(e));
    }
    (events, p.usage)
}

/// A token field's value: a string or list, empty or not, or null.
fn token_value(g: &mut Gen, out: &mut Vec<u8>) {
    match g.below(6) {
        0 => out.extend_from_slice(b"null"),
        1 => out.extend_from_slice(b"\"\""),
        2 => out.extend_from_slice(b"[]"),
        3 => out.extend_from_slice(b"[{\"index\":0,\"id\":\"call\"}]"),
        _ => g.string(out, 0.0),
    }
}

/// A chunk payload: OpenAI-shaped with random contents, an error, or anything.
fn payload(g: &mut Gen, out: &mut Vec<u8>) {
    match g.below(12) {
        0 => {
            let mut v = Vec::new();
            g.value(&mut v, 3, 0.0);
            // A list where `usage` is expected is read by position (the derived
            // `Deserialize`), which the reference does not model.
            if memchr::memmem::find(&v, b"usage").is_none() {
                out.extend_from_slice(&v);
            } else {
                out.extend_from_slice(b"{}");
            }
            return;
        }
        1 => {
            out.extend_from_slice(b"{\"error\":");
            match g.below(4) {
                0 => out.extend_from_slice(b"{\"code\":\"x\",\"message\":\"upstream stalled\"}"),
                1 => g.string(out, 0.0),
                2 => out.extend_from_slice(b"null"),
                _ => g.value(out, 2, 0.0),
            }
            out.extend_from_slice(b",\"choices\":[{\"text\":\"a\"}]}");
            return;
        }
        _ => {}
    }
    out.extend_from_slice(b"{\"id\":\"c\",\"choices\":");
    if g.chance(0.1) {
        out.extend_from_slice(b"null");
    } else {
        out.push(b'[');
        for i in 0..g.below(3) {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"index\":0");
            if g.chance(0.3) {
                out.extend_from_slice(b",\"text\":");
                token_value(g, out);
            }
            if g.chance(0.7) {
                out.extend_from_slice(b",\"delta\":");
                if g.chance(0.1) {
                    out.extend_from_slice(b"null");
                } else {
                    out.extend_from_slice(b"{\"role\":\"assistant\"");
                    for f in ["content", "reasoning_content", "reasoning", "tool_calls"] {
                        if g.chance(0.3) {
                            out.extend_from_slice(format!(",\"{f}\":").as_bytes());
                            token_value(g, out);
                        }
                    }
                    out.push(b'}');
                }
            }
            out.extend_from_slice(b",\"finish_reason\":null}");
        }
        out.push(b']');
    }
    if g.chance(0.3) {
        out.extend_from_slice(b",\"usage\":");
        if g.chance(0.2) {
            out.extend_from_slice(b"null");
        } else {
            let (p, c) = (
                g.rng.random_range(0..1000u32),
                g.rng.random_range(0..1000u32),
            );
            out.extend_from_slice(
                format!("{{\"prompt_tokens\":{p},\"total_tokens\":1,\"completion_tokens\":{c}}}")
                    .as_bytes(),
            );
        }
    }
    if g.chance(0.2) {
        out.extend_from_slice(b",\"x\":");
        g.value(out, 2, 0.0);
    }
    out.push(b'}');
}

/// A stream of lines: data lines (with or without the space, CRLF or LF), comments, other
/// fields, blank lines, `[DONE]`, long lines, stray `\r`, and maybe no final newline.
fn stream(g: &mut Gen) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..g.below(12) {
        match g.below(12) {
            0 => out.extend_from_slice(g.pick(&[&b": keep-alive"[..], b"event: x", b"id: 1"])),
            1 => {}
            2 => out.extend_from_slice(g.pick(&[&b"data: [DONE]"[..], b"data:[DONE]", b"data:"])),
            3 => out.extend_from_slice(g.pick(&[&b"data: not json"[..], b" data: x", b"DATA: x"])),
            4 => {
                out.extend_from_slice(b"data: {\"choices\":[{\"text\":\"");
                let n = g.rng.random_range(10..400);
                out.resize(out.len() + n, b'w');
                out.extend_from_slice(b"\"}]}");
            }
            _ => {
                let prefix: &[u8] = g.pick(&[&b"data: "[..], b"data:", b"data:  "]);
                out.extend_from_slice(prefix);
                payload(g, &mut out);
            }
        }
        if g.chance(0.05) {
            out.push(b'\r');
        }
        let end: &[u8] = g.pick(&[&b"\n"[..], b"\n", b"\r\n", b"\n\n", b"\r\n\r\n"]);
        out.extend_from_slice(end);
    }
    if g.chance(0.2) {
        out.extend_from_slice(b"data: {\"choices\":[{\"text\":\"never ended\"}]}");
    }
    out
}

#[test]
fn sse_parser_agrees_with_the_reference_in_any_split() {
    let mut events = 0usize;
    run_cases("SseParser", CASES, |g| {
        g.wild = false;
        let s = stream(g);
        let max_line = *g.pick(&[&48usize, &128, &512, &infergate_wire::sse::MAX_LINE]);
        let cuts = g.splits(s.len());
        let want = reference(&s, &cuts, max_line);
        let got = parse(&frames(&s, &cuts), max_line);
        events += want.0.len();
        let why = (got != want).then(|| {
            format!("reference: {want:?}\nparser:    {got:?}\n(max_line {max_line}, cuts {cuts:?})")
        });
        (s, why)
    });
    eprintln!("sse: {CASES} streams, {events} events");
}

/// Streams on which the parser and the reference once disagreed.
#[test]
fn regressions() {
    let cases: &[(&str, &[u8])] = &[(
        "a list payload was read by position as choices, usage",
        b"data:  [ [],{}\t\r\t]\r\n\r\ndata: [[{\"text\":\"a\"}],{\"prompt_tokens\":5}]\n",
    )];
    for (name, s) in cases {
        let want = reference(s, &[0, s.len()], 1024);
        assert_eq!(want, (vec![Event::Other, Event::Other], None), "{name}");
        for cut in 0..=s.len() {
            assert_eq!(
                parse(&[&s[..cut], &s[cut..]], 1024),
                want,
                "{name}, cut at {cut}"
            );
        }
    }
}
