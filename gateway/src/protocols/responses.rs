//! Metering of the OpenAI Responses API (`/v1/responses`).
//!
//! Streamed, it is an SSE stream of typed events (`data: {"type": "response.output_text.delta",
//! "delta": "..."}`). A **token event** is a `response.output_text.delta`,
//! `response.refusal.delta`, `response.reasoning_text.delta`,
//! `response.reasoning_summary_text.delta` or `response.function_call_arguments.delta` with a
//! non-empty `delta`. Usage is read from `response.completed` (or `response.incomplete`,
//! `response.failed`): `response.usage.{input_tokens, output_tokens}`. Not streamed, the JSON
//! response's top-level `usage` has the same two fields ([`input_output`]).

use std::borrow::Cow;

use infergate_wire::sse::{SseLines, Usage};
use serde::Deserialize;

/// Event types that carry a token.
const TOKEN_EVENTS: [&str; 5] = [
    "response.output_text.delta",
    "response.refusal.delta",
    "response.reasoning_text.delta",
    "response.reasoning_summary_text.delta",
    "response.function_call_arguments.delta",
];

/// Event types whose `response` holds the final usage.
const FINAL_EVENTS: [&str; 3] = [
    "response.completed",
    "response.incomplete",
    "response.failed",
];

/// Follows a Responses event stream frame by frame. Only an incomplete line is kept across
/// frames, at most `max_line` bytes (a longer line is skipped and not counted).
#[derive(Debug)]
pub struct ResponsesSse {
    lines: SseLines,
    pub usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    delta: Option<Cow<'a, str>>,
    #[serde(default)]
    response: Option<Final>,
}

#[derive(Deserialize)]
struct Final {
    #[serde(default)]
    usage: Option<InputOutput>,
}

/// The Responses API's usage object.
#[derive(Clone, Copy, Deserialize)]
struct InputOutput {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

impl From<InputOutput> for Usage {
    fn from(u: InputOutput) -> Usage {
        Usage {
            prompt_tokens: u.input_tokens,
            completion_tokens: u.output_tokens,
        }
    }
}

impl ResponsesSse {
    pub fn new(max_line: usize) -> Self {
        ResponsesSse {
            lines: SseLines::new(max_line),
            usage: None,
        }
    }

    /// Reads one body frame; returns how many token events it completed.
    pub fn observe(&mut self, chunk: &[u8]) -> u32 {
        let mut tokens = 0;
        let usage = &mut self.usage;
        self.lines
            .feed(chunk, |line| tokens += event_line(line, usage));
        tokens
    }
}

/// One line of a Responses stream: 1 for a token event; a final event's usage is kept.
fn event_line(line: &[u8], usage: &mut Option<Usage>) -> u32 {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(data) = line.strip_prefix(b"data:") else {
        return 0;
    };
    let Ok(ev) = serde_json::from_slice::<Event<'_>>(data) else {
        return 0;
    };
    if TOKEN_EVENTS.contains(&ev.kind.as_ref()) {
        return u32::from(ev.delta.is_some_and(|d| !d.is_empty()));
    }
    if FINAL_EVENTS.contains(&ev.kind.as_ref()) {
        if let Some(u) = ev.response.and_then(|r| r.usage) {
            *usage = Some(u.into());
        }
    }
    0
}

/// The usage of a Responses usage object (`{input_tokens, output_tokens}`), if `object` is one.
pub fn input_output(object: &[u8]) -> Option<Usage> {
    let u: InputOutput = serde_json::from_slice(object).ok()?;
    (u.input_tokens.is_some() || u.output_tokens.is_some()).then(|| u.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = concat!(
        "event: response.created\n",
        "data: {\"type\":\"response.created\",\"response\":{\"id\":\"r1\",\"usage\":null}}\n\n",
        "event: response.output_text.delta\n",
        "data: {\"type\":\"response.output_text.delta\",\"item_id\":\"m\",\"delta\":\"The\"}\n\n",
        "event: response.output_text.delta\n",
        "data: {\"type\":\"response.output_text.delta\",\"delta\":\"\"}\n\n",
        "event: response.output_text.delta\n",
        "data: {\"type\":\"response.output_text.delta\",\"delta\":\" fox\\n\"}\n\n",
        "event: response.output_text.done\n",
        "data: {\"type\":\"response.output_text.done\",\"text\":\"The fox\"}\n\n",
        "event: response.completed\n",
        "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"r1\",\"output\":[],",
        "\"usage\":{\"input_tokens\":7,\"output_tokens\":2,\"total_tokens\":9}}}\n\n",
    );

    #[test]
    fn deltas_are_tokens_and_usage_comes_from_completed() {
        let mut whole = ResponsesSse::new(1 << 16);
        assert_eq!(whole.observe(STREAM.as_bytes()), 2);
        let want = Some(Usage {
            prompt_tokens: Some(7),
            completion_tokens: Some(2),
        });
        assert_eq!(whole.usage, want);
        // Split at every byte: the same counts.
        let mut split = ResponsesSse::new(1 << 16);
        let n: u32 = STREAM
            .as_bytes()
            .iter()
            .map(|b| split.observe(std::slice::from_ref(b)))
            .sum();
        assert_eq!(n, 2);
        assert_eq!(split.usage, want);
    }

    #[test]
    fn long_lines_are_skipped() {
        let mut o = ResponsesSse::new(64);
        let long = format!(
            "data: {{\"type\":\"response.output_text.delta\",\"delta\":\"{}\"}}\n",
            "x".repeat(100)
        );
        assert_eq!(o.observe(&long.as_bytes()[..50]), 0);
        assert_eq!(o.observe(&long.as_bytes()[50..]), 0);
        assert_eq!(
            o.observe(b"data: {\"type\":\"response.output_text.delta\",\"delta\":\"y\"}\n"),
            1
        );
    }

    #[test]
    fn a_json_usage_object_is_read() {
        let u = input_output(br#"{"input_tokens":3,"output_tokens":5}"#);
        assert_eq!(
            u,
            Some(Usage {
                prompt_tokens: Some(3),
                completion_tokens: Some(5)
            })
        );
        assert_eq!(input_output(br#"{"prompt_tokens":3}"#), None);
    }
}
