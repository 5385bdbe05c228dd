//! The SSE reader (`infergate_wire::sse::SseParser`):
//!
//! - however the stream is cut into frames, it gives the same events and the same last `usage`
//!   as when the stream arrives whole (every line here is shorter than the default line limit);
//! - with a small line limit, it reads exactly the lines a line-by-line reading keeps: a line
//!   within the limit always, a longer one only when it arrives within one frame;
//! - where every `data:` payload that starts with `{` is one `serde_json` reads as an object of
//!   the shape servers send (no repeated key, `usage` an object of unsigned counts or null,
//!   `choices` a list of objects or null, each `delta` an object or null), the events and the
//!   usage are those of the documented rules applied to `serde_json`'s reading.

use std::collections::BTreeSet;
use std::fmt;

use infergate_wire::sse::{Event, SseParser, Usage, MAX_LINE};
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The small line limit of the second check.
const SHORT: usize = 40;

type Seen = (Vec<Event>, Option<Usage>);

/// Runs the parser on `stream` in several splits and compares with the references.
pub fn check(stream: &[u8]) -> Result<(), String> {
    if stream.len() >= MAX_LINE {
        return Ok(());
    }
    let whole = parse(&[stream], MAX_LINE);
    let by_byte: Vec<&[u8]> = stream.chunks(1).collect();
    for (name, frames) in [
        ("byte by byte", by_byte),
        ("in uneven frames", uneven(stream)),
    ] {
        let got = parse(&frames, MAX_LINE);
        if got != whole {
            return Err(format!("whole: {whole:?}\n{name}: {got:?}"));
        }
    }
    let frames = uneven(stream);
    let got = parse(&frames, SHORT);
    let want = line_by_line(&frames, SHORT);
    if got != want {
        return Err(format!(
            "line limit {SHORT}: lines {want:?}, in frames {got:?}"
        ));
    }
    if let Some(want) = documented(stream) {
        if want != whole {
            return Err(format!("rules on serde_json: {want:?}\nparser: {whole:?}"));
        }
    }
    Ok(())
}

fn parse(frames: &[&[u8]], max_line: usize) -> Seen {
    let mut p = SseParser::with_max_line(max_line);
    let mut events = Vec::new();
    for f in frames {
        p.feed(f, |e| events.push(e));
    }
    (events, p.usage)
}

/// `stream` cut into frames of 1, 2, 3, ... bytes.
fn uneven(stream: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let (mut rest, mut n) = (stream, 1);
    while !rest.is_empty() {
        let (a, b) = rest.split_at(n.min(rest.len()));
        out.push(a);
        rest = b;
        n += 1;
    }
    out
}

/// The complete lines the parser keeps with limit `max_line`, each fed alone (with its `\n`)
/// to one parser without a limit.
fn line_by_line(frames: &[&[u8]], max_line: usize) -> Seen {
    let mut p = SseParser::with_max_line(MAX_LINE);
    let mut events = Vec::new();
    let mut line = Vec::new();
    let mut spans_frames = false;
    for f in frames {
        for (i, &b) in f.iter().enumerate() {
            if b != b'\n' {
                if i == 0 && !line.is_empty() {
                    spans_frames = true;
                }
                line.push(b);
                continue;
            }
            if i == 0 && !line.is_empty() {
                spans_frames = true;
            }
            if line.len() <= max_line || !spans_frames {
                line.push(b'\n');
                p.feed(&line, |e| events.push(e));
            }
            line.clear();
            spans_frames = false;
        }
    }
    (events, p.usage)
}

/// The events the documented rules give on `serde_json`'s reading of each line, where every
/// object payload has the shape servers send; `None` otherwise.
fn documented(stream: &[u8]) -> Option<Seen> {
    let (mut events, mut usage) = (Vec::new(), None);
    let mut rest = stream;
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        let (line, tail) = rest.split_at(nl);
        rest = &tail[1..];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(data) = line.strip_prefix(b"data:") else {
            continue;
        };
        let data = data.strip_prefix(b" ").unwrap_or(data);
        if data.is_empty() {
            continue;
        }
        if data == b"[DONE]" {
            events.push(Event::Done);
            continue;
        }
        let starts_object = data
            .iter()
            .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            == Some(&b'{');
        if !starts_object {
            events.push(Event::Other);
            continue;
        }
        let p = match serde_json::from_slice::<Value>(data) {
            Ok(Value::Object(p)) if server_shaped(&p) && !repeats_a_key(data) => p,
            _ => return None,
        };
        events.push(classify(&p, &mut usage)?);
    }
    Some((events, usage))
}

fn classify(p: &serde_json::Map<String, Value>, usage: &mut Option<Usage>) -> Option<Event> {
    if let Some(u @ Value::Object(_)) = p.get("usage") {
        *usage = Some(serde_json::from_value(u.clone()).ok()?);
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
    let non_empty = |v: Option<&Value>| match v {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        _ => false,
    };
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

/// The known fields have the types servers send (or null).
fn server_shaped(p: &serde_json::Map<String, Value>) -> bool {
    let count = |v: Option<&Value>| {
        matches!(v, None | Some(Value::Null)) || v.and_then(Value::as_u64).is_some()
    };
    let usage = match p.get("usage") {
        None | Some(Value::Null) => true,
        Some(Value::Object(u)) => {
            count(u.get("prompt_tokens")) && count(u.get("completion_tokens"))
        }
        Some(_) => false,
    };
    let choices = match p.get("choices") {
        None | Some(Value::Null) => true,
        Some(Value::Array(cs)) => cs.iter().all(|c| {
            matches!(c, Value::Object(c)
                if matches!(c.get("delta"), None | Some(Value::Null | Value::Object(_))))
        }),
        Some(_) => false,
    };
    usage && choices
}

/// Whether any object in the JSON text has a key twice (after unescaping).
fn repeats_a_key(data: &[u8]) -> bool {
    struct Walk;
    impl<'de> Visitor<'de> for Walk {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let (mut keys, mut repeated) = (BTreeSet::new(), false);
            while let Some(k) = map.next_key::<String>()? {
                repeated |= !keys.insert(k);
                repeated |= map.next_value::<Repeats>()?.0;
            }
            Ok(repeated)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            let mut repeated = false;
            while let Some(r) = seq.next_element::<Repeats>()? {
                repeated |= r.0;
            }
            Ok(repeated)
        }
        fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_str<E>(self, _: &str) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_unit<E>(self) -> Result<bool, E> {
            Ok(false)
        }
    }
    struct Repeats(bool);
    impl<'de> serde::Deserialize<'de> for Repeats {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Walk).map(Repeats)
        }
    }
    serde_json::from_slice::<Repeats>(data).map_or(true, |r| r.0)
}
