//! Incremental parsing of an OpenAI-style SSE stream, frame by frame, without collecting the
//! body.
//!
//! Only `data:` lines matter. Each payload is classified with a typed, borrowing parse that
//! skips what it does not need: a **token event** carries a non-empty token delta (a
//! non-empty `choices[].delta.content`, `delta.reasoning_content`, `delta.reasoning`,
//! `delta.tool_calls`, or completions `choices[].text`, as in `docs/metrics.md`); the role-only
//! first chunk and the usage chunk are not token events. `usage` is kept from any event that
//! has it, `data: [DONE]` ends the stream, and a payload with a top-level `error` is an error
//! event. Only a partial line is buffered between frames (at most [`MAX_LINE`] bytes; a longer
//! line is skipped).

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::object::Object;

/// The longest line kept across frames by default; a longer one is skipped.
pub const MAX_LINE: usize = 4 << 20;

/// What one `data:` payload is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A token event.
    Token,
    /// `[DONE]`.
    Done,
    /// An error event, with its message.
    Error(String),
    /// Anything else (role chunk, usage chunk, finish chunk, non-JSON).
    Other,
}

/// Token counts reported by the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    #[serde(default)]
    pub completion_tokens: Option<u64>,
}

/// The lines of an event stream, frame by frame. Only an incomplete line is kept across
/// frames, at most `max_line` bytes; a longer line is skipped whole.
#[derive(Debug)]
pub struct SseLines {
    partial: Vec<u8>,
    skipping: bool,
    max_line: usize,
}

impl SseLines {
    pub fn new(max_line: usize) -> Self {
        SseLines {
            partial: Vec::new(),
            skipping: false,
            max_line,
        }
    }

    /// Feeds one body frame; `on_line` is called for each complete line, in order, without its
    /// `\n` (a `\r` before it is left in place).
    pub fn feed(&mut self, mut chunk: &[u8], mut on_line: impl FnMut(&[u8])) {
        while let Some(nl) = memchr::memchr(b'\n', chunk) {
            let (line, rest) = chunk.split_at(nl);
            chunk = rest.get(1..).unwrap_or_default();
            if self.skipping {
                self.skipping = false;
                self.partial.clear();
                continue;
            }
            if self.partial.is_empty() {
                on_line(line);
            } else if self.partial.len() + line.len() <= self.max_line {
                let mut joined = std::mem::take(&mut self.partial);
                joined.extend_from_slice(line);
                on_line(&joined);
                joined.clear();
                self.partial = joined;
            } else {
                self.partial.clear();
            }
        }
        if !chunk.is_empty() && !self.skipping {
            if self.partial.len() + chunk.len() > self.max_line {
                self.partial.clear();
                self.skipping = true;
            } else {
                self.partial.extend_from_slice(chunk);
            }
        }
    }
}

/// State kept across the frames of one response.
#[derive(Debug)]
pub struct SseParser {
    lines: SseLines,
    /// The last `usage` seen.
    pub usage: Option<Usage>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::with_max_line(MAX_LINE)
    }
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser that keeps at most `max_line` bytes of an incomplete line across frames.
    pub fn with_max_line(max_line: usize) -> Self {
        SseParser {
            lines: SseLines::new(max_line),
            usage: None,
        }
    }

    /// Feeds one body frame; `on_event` is called for each complete `data:` line, in order.
    pub fn feed(&mut self, chunk: &[u8], mut on_event: impl FnMut(Event)) {
        let usage = &mut self.usage;
        self.lines
            .feed(chunk, |line| data_line(line, usage, &mut on_event));
    }
}

/// One line of an OpenAI stream: a `data:` payload becomes an event; its `usage` is kept.
fn data_line(line: &[u8], usage: &mut Option<Usage>, on_event: &mut impl FnMut(Event)) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(data) = line.strip_prefix(b"data:") else {
        return;
    };
    let data = data.strip_prefix(b" ").unwrap_or(data);
    if data.is_empty() {
        return;
    }
    if data == b"[DONE]" {
        on_event(Event::Done);
        return;
    }
    // Only an object is a payload: the derived `Deserialize` would read a list by position.
    let object = data
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .is_some_and(|&b| b == b'{');
    let ev = match serde_json::from_slice::<Payload>(data) {
        Ok(p) if object => p,
        _ => {
            on_event(Event::Other);
            return;
        }
    };
    if let Some(u) = ev.usage.0 {
        *usage = Some(u);
    }
    if let Some(msg) = ev.error {
        on_event(Event::Error(msg.0));
    } else if ev.choices.0 {
        on_event(Event::Token);
    } else {
        on_event(Event::Other);
    }
}

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    choices: AnyToken,
    #[serde(default)]
    usage: Object<Usage>,
    #[serde(default)]
    error: Option<ErrorMessage>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Object<Delta>,
    #[serde(default)]
    text: Option<NonEmpty>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<NonEmpty>,
    #[serde(default)]
    reasoning_content: Option<NonEmpty>,
    #[serde(default)]
    reasoning: Option<NonEmpty>,
    #[serde(default)]
    tool_calls: Option<NonEmpty>,
}

impl Choice {
    fn has_token(&self) -> bool {
        let text = self.text.as_ref().is_some_and(|t| t.0);
        let delta = self.delta.0.as_ref().is_some_and(|d| {
            [
                &d.content,
                &d.reasoning_content,
                &d.reasoning,
                &d.tool_calls,
            ]
            .iter()
            .any(|f| f.as_ref().is_some_and(|t| t.0))
        });
        text || delta
    }
}

/// `choices`: true when any choice carries a token; built without collecting the choices.
#[derive(Default)]
struct AnyToken(bool);

impl<'de> Deserialize<'de> for AnyToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnyToken;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of choices")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<AnyToken, A::Error> {
                let mut any = false;
                while let Some(c) = s.next_element::<Object<Choice>>()? {
                    any |= c.0.is_some_and(|c| c.has_token());
                }
                Ok(AnyToken(any))
            }
            fn visit_unit<E: de::Error>(self) -> Result<AnyToken, E> {
                Ok(AnyToken(false))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string or list that is non-empty (other JSON values: empty).
struct NonEmpty(bool);

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NonEmpty;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NonEmpty, E> {
                Ok(NonEmpty(!v.is_empty()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<NonEmpty, E> {
                Ok(NonEmpty(false))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<NonEmpty, E> {
                Ok(NonEmpty(false))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<NonEmpty, E> {
                Ok(NonEmpty(false))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<NonEmpty, E> {
                Ok(NonEmpty(false))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<NonEmpty, E> {
                Ok(NonEmpty(false))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<NonEmpty, A::Error> {
                let mut n = 0usize;
                while s.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(NonEmpty(n > 0))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<NonEmpty, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(NonEmpty(false))
            }
        }
        d.deserialize_any(V)
    }
}

/// The message of an `error` field: `{"message": ...}` (OpenAI shape) or a string. A `null`
/// error never gets here: `Option<ErrorMessage>` reads it as `None`.
struct ErrorMessage(String);

impl<'de> Deserialize<'de> for ErrorMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let msg = match &v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Object(o) => match o.get("message") {
                Some(serde_json::Value::String(s)) => s.clone(),
                _ => v.to_string(),
            },
            other => other.to_string(),
        };
        Ok(ErrorMessage(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_where_objects_belong_carry_no_token_and_no_usage() {
        let (ev, usage) = events(&[
            b"data: {\"choices\":[[null,\"a\"]]}\n\n",
            b"data: {\"choices\":[{\"delta\":[\"a\"]}]}\n\n",
            b"data: {\"choices\":[\"a\"],\"usage\":[5,2]}\n\n",
            b"data: {\"choices\":[{\"text\":\"a\"}]}\n\n",
        ]);
        assert_eq!(ev, [Event::Other, Event::Other, Event::Other, Event::Token]);
        assert_eq!(usage, None);
    }

    fn events(frames: &[&[u8]]) -> (Vec<Event>, Option<Usage>) {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for f in frames {
            p.feed(f, |e| out.push(e));
        }
        (out, p.usage)
    }

    #[test]
    fn chat_stream() {
        let body = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" the\"},\"finish_reason\":null}]}\n\n",
            ": keep-alive comment\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" fox\"},\"finish_reason\":\"length\"}],\"usage\":null}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"total_tokens\":7,\"completion_tokens\":2}}\n\n",
            "data: [DONE]\n\n",
        );
        let (ev, usage) = events(&[body.as_bytes()]);
        assert_eq!(
            ev,
            vec![
                Event::Other,
                Event::Token,
                Event::Token,
                Event::Other,
                Event::Done
            ]
        );
        assert_eq!(
            usage,
            Some(Usage {
                prompt_tokens: Some(5),
                completion_tokens: Some(2)
            })
        );
    }

    #[test]
    fn split_anywhere_and_crlf() {
        let body = "data: {\"choices\":[{\"text\":\"a\"}]}\r\n\r\ndata:{\"choices\":[{\"delta\":{\"reasoning_content\":\"x\"}}]}\n\ndata: [DONE]\n\n";
        let whole = events(&[body.as_bytes()]).0;
        assert_eq!(whole, vec![Event::Token, Event::Token, Event::Done]);
        for cut in 0..body.len() {
            let (a, b) = body.as_bytes().split_at(cut);
            assert_eq!(events(&[a, b]).0, whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = body.as_bytes().chunks(1).collect();
        assert_eq!(events(&bytes).0, whole);
    }

    #[test]
    fn tool_calls_and_empty_values() {
        let (ev, _) = events(&[
            b"data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0}]}}]}\n",
            b"data: {\"choices\":[{\"delta\":{\"tool_calls\":[]}}]}\n",
            b"data: {\"choices\":[{\"delta\":{\"content\":null}}]}\n",
            b"data: {\"choices\":null}\n",
            b"data: not json\n",
            b"data: \n",
        ]);
        assert_eq!(
            ev,
            vec![
                Event::Token,
                Event::Other,
                Event::Other,
                Event::Other,
                Event::Other
            ]
        );
    }

    #[test]
    fn error_events() {
        let (ev, _) = events(&[
            b"data: {\"error\":{\"code\":\"upstream_stalled\",\"message\":\"upstream sent nothing\",\"param\":null,\"type\":\"server_error\"}}\n\n",
            b"data: {\"error\":\"boom\"}\n\n",
            b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"error\":null}\n\n",
        ]);
        assert_eq!(
            ev,
            vec![
                Event::Error("upstream sent nothing".into()),
                Event::Error("boom".into()),
                Event::Token
            ]
        );
    }

    #[test]
    fn long_lines_are_skipped_not_buffered() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let big = vec![b'x'; MAX_LINE];
        p.feed(b"data: ", |e| out.push(e));
        p.feed(&big, |e| out.push(e));
        p.feed(&big, |e| out.push(e));
        assert!(p.lines.partial.len() <= MAX_LINE);
        p.feed(b"\ndata: [DONE]\n", |e| out.push(e));
        assert_eq!(out, vec![Event::Done]);
    }

    #[test]
    fn a_list_payload_is_not_read_by_position() {
        let (ev, usage) = events(&[
            b"data: [[{\"text\":\"a\"}],{\"prompt_tokens\":5}]\n",
            b"data:  [ [],{} ]\n",
        ]);
        assert_eq!(ev, vec![Event::Other, Event::Other]);
        assert_eq!(usage, None);
    }
}
