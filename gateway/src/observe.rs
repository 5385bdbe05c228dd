//! Observers that read a response body as it passes, without holding a copy of it.
//!
//! [`SseObserver`] follows a `text/event-stream` body with the `infergate-wire` SSE parser: per
//! frame, how many events carried a token (the definition in `docs/metrics.md`), and the last
//! `usage`. Only an incomplete line is carried from one frame to the next, and that carry is
//! bounded.
//!
//! [`JsonUsageScanner`] finds the top-level `"usage":{...}` object of a plain JSON response,
//! following the structure of the document as the frames pass.

/// Longest SSE line kept across frames; a longer line is skipped (and not counted).
pub const MAX_LINE: usize = 256 * 1024;
/// Longest `usage` object read from a JSON body.
pub const MAX_USAGE: usize = 4096;

pub use infergate_wire::sse::Usage;
use infergate_wire::sse::{Event, SseParser};

use crate::protocols::responses::{input_output, ResponsesSse};

/// What the observer saw in one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameSeen {
    /// Events in this frame that carried a token.
    pub token_events: u32,
}

/// Follows an SSE body frame by frame, with the definitions of `infergate_wire::sse` (shared with
/// the load tester).
#[derive(Debug)]
pub struct SseObserver {
    parser: SseParser,
    /// Set for a `/v1/responses` stream, which has its own events (`crate::protocols::responses`).
    responses: Option<ResponsesSse>,
}

impl Default for SseObserver {
    fn default() -> Self {
        SseObserver {
            parser: SseParser::with_max_line(MAX_LINE),
            responses: None,
        }
    }
}

impl SseObserver {
    /// An observer of an OpenAI Responses event stream.
    pub fn responses() -> Self {
        SseObserver {
            parser: SseParser::with_max_line(0),
            responses: Some(ResponsesSse::new(MAX_LINE)),
        }
    }

    /// Reads one body frame.
    pub fn observe(&mut self, chunk: &[u8]) -> FrameSeen {
        let mut seen = FrameSeen::default();
        if let Some(r) = &mut self.responses {
            seen.token_events = r.observe(chunk);
            return seen;
        }
        self.parser.feed(chunk, |ev| {
            if ev == Event::Token {
                seen.token_events += 1;
            }
        });
        seen
    }

    /// The last `usage` seen.
    pub fn usage(&self) -> Option<Usage> {
        match &self.responses {
            Some(r) => r.usage,
            None => self.parser.usage,
        }
    }
}

/// Finds the top-level `"usage": {...}` of a JSON body that arrives in frames.
///
/// The scanner follows the structure of the document (nesting, strings, escapes) without
/// building it: only the keys of the top-level object are looked at (compared after unescaping),
/// and only the value of a `usage` key is collected (at most [`MAX_USAGE`] bytes) and parsed.
/// As `serde_json` reads an object, the last top-level `usage` counts: a later `"usage": null`
/// (or any value that is not a usage object) leaves none.
#[derive(Debug, Default)]
pub struct JsonUsageScanner {
    /// Open objects and arrays around the current byte.
    depth: u32,
    /// Whether the document is an object (its first byte is `{`).
    object_doc: bool,
    started: bool,
    in_string: bool,
    escaped: bool,
    /// The raw text of the string being read, when it may be a top-level key.
    key: Vec<u8>,
    /// The current string is at the top level of the document object.
    top_string: bool,
    /// The key length limit was passed.
    key_too_long: bool,
    /// A top-level string just ended: whether it reads `usage` (a key once `:` follows).
    pending: Option<bool>,
    /// After `"usage":`, waiting for the value.
    want_value: bool,
    /// Collecting the usage object (from its `{`) in `object`.
    collecting: bool,
    object: Vec<u8>,
    pub usage: Option<Usage>,
}

/// Longest raw key text looked at (`usage` with every letter escaped is 30 bytes).
const MAX_KEY: usize = 32;

impl JsonUsageScanner {
    pub fn observe(&mut self, chunk: &[u8]) {
        // Where the part of `chunk` that belongs to the usage object starts.
        let mut from = 0;
        let mut i = 0;
        while i < chunk.len() {
            if self.in_string {
                i = self.string(chunk, i);
                continue;
            }
            let c = chunk[i];
            i += 1;
            if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
                continue;
            }
            if !self.started {
                self.started = true;
                self.object_doc = c == b'{';
            }
            if std::mem::take(&mut self.want_value) {
                if c == b'{' {
                    self.collecting = true;
                    self.object.clear();
                    from = i - 1;
                } else {
                    self.usage = None;
                }
            }
            let pending = self.pending.take();
            match c {
                b'"' => {
                    self.in_string = true;
                    self.top_string = self.depth == 1 && self.object_doc && !self.collecting;
                    self.key.clear();
                    self.key_too_long = false;
                }
                b'{' | b'[' => self.depth = self.depth.saturating_add(1),
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.collecting && self.depth == 1 {
                        self.collect(&chunk[from..i]);
                        self.finish();
                    }
                }
                b':' if self.depth == 1 && pending == Some(true) => self.want_value = true,
                _ => {}
            }
        }
        if self.collecting {
            self.collect(&chunk[from..]);
        }
    }

    /// Reads string bytes from `i`; returns where the string's end or the chunk's end is.
    fn string(&mut self, chunk: &[u8], i: usize) -> usize {
        if self.escaped {
            self.escaped = false;
            self.key_bytes(&chunk[i..=i]);
            return i + 1;
        }
        let Some(pos) = memchr::memchr2(b'"', b'\\', &chunk[i..]) else {
            self.key_bytes(&chunk[i..]);
            return chunk.len();
        };
        self.key_bytes(&chunk[i..i + pos]);
        if chunk[i + pos] == b'\\' {
            self.escaped = true;
            self.key_bytes(b"\\");
        } else {
            self.in_string = false;
            if self.top_string {
                self.pending = Some(self.is_usage_key());
            }
        }
        i + pos + 1
    }

    fn key_bytes(&mut self, bytes: &[u8]) {
        if !self.top_string || self.key_too_long {
            return;
        }
        if self.key.len() + bytes.len() > MAX_KEY {
            self.key_too_long = true;
        } else {
            self.key.extend_from_slice(bytes);
        }
    }

    fn is_usage_key(&self) -> bool {
        if self.key_too_long {
            return false;
        }
        if !self.key.contains(&b'\\') {
            return self.key == b"usage";
        }
        let mut quoted = Vec::with_capacity(self.key.len() + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(&self.key);
        quoted.push(b'"');
        serde_json::from_slice::<String>(&quoted).is_ok_and(|k| k == "usage")
    }

    /// Adds bytes of the usage object; past [`MAX_USAGE`] the object is dropped.
    fn collect(&mut self, bytes: &[u8]) {
        if !self.collecting {
            return;
        }
        if self.object.len() + bytes.len() > MAX_USAGE {
            self.collecting = false;
            self.object.clear();
            self.usage = None;
        } else {
            self.object.extend_from_slice(bytes);
        }
    }

    /// The usage object is whole: read it as `serde_json` reads it into a `Value` (a repeated
    /// field counts once, with its last value).
    fn finish(&mut self) {
        if !std::mem::take(&mut self.collecting) {
            return;
        }
        self.usage = match serde_json::from_slice::<Usage>(&self.object) {
            Ok(u) => Some(u),
            Err(_) => serde_json::from_slice::<serde_json::Value>(&self.object)
                .ok()
                .and_then(|v| serde_json::from_value::<Usage>(v).ok()),
        };
        // The Responses API names its counts `input_tokens` and `output_tokens`.
        if self.usage == Some(Usage::default()) {
            self.usage = input_output(&self.object).or(self.usage);
        }
        self.object.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAT: &str = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" }\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\\\"b\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Prefill\"},\"finish_reason\":\"length\"}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"total_tokens\":14,\"completion_tokens\":3}}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn counts_token_events_and_reads_usage() {
        let mut o = SseObserver::default();
        let seen = o.observe(CHAT.as_bytes());
        assert_eq!(seen.token_events, 3);
        assert_eq!(
            o.usage(),
            Some(Usage {
                prompt_tokens: Some(11),
                completion_tokens: Some(3)
            })
        );
    }

    #[test]
    fn same_result_for_every_split_of_the_stream() {
        let bytes = CHAT.as_bytes();
        for cut in 0..bytes.len() {
            for cut2 in [
                cut,
                (cut + 7).min(bytes.len()),
                (cut + 100).min(bytes.len()),
            ] {
                let mut o = SseObserver::default();
                let a = o.observe(&bytes[..cut]).token_events;
                let b = o.observe(&bytes[cut..cut2]).token_events;
                let c = o.observe(&bytes[cut2..]).token_events;
                assert_eq!(a + b + c, 3, "cut at {cut}/{cut2}");
                assert_eq!(o.usage().and_then(|u| u.completion_tokens), Some(3));
            }
        }
    }

    #[test]
    fn completions_text_tool_calls_and_crlf() {
        let mut o = SseObserver::default();
        let s = "data: {\"choices\":[{\"text\":\"Route\"}]}\r\n\r\ndata: {\"choices\":[{\"text\":\"\"}]}\r\n\r\n\
                 data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"x\"}]}}]}\n\n: comment\n\nevent: x\ndata: not json\n\n";
        assert_eq!(o.observe(s.as_bytes()).token_events, 2);
        assert_eq!(o.usage(), None);
    }

    #[test]
    fn overlong_line_is_skipped_and_the_next_is_read() {
        let mut o = SseObserver::default();
        let mut big = b"data: {\"choices\":[{\"text\":\"".to_vec();
        big.resize(MAX_LINE + 10, b'a');
        let skipped = o.observe(&big).token_events;
        let read = o.observe(b"aaa\"}]}\n\ndata: {\"choices\":[{\"text\":\"x\"}]}\n\n");
        assert_eq!(skipped + read.token_events, 1);
    }

    #[test]
    fn json_usage_found_in_any_split() {
        let body = br#"{"id":"x","choices":[{"message":{"content":"the \"usage\": {\"completion_tokens\":99}"}}],"usage":{"prompt_tokens":5,"total_tokens":12,"completion_tokens":7,"details":{"a":"}"}}}"#;
        for cut in 0..body.len() {
            let mut s = JsonUsageScanner::default();
            s.observe(&body[..cut]);
            s.observe(&body[cut..]);
            assert_eq!(
                s.usage,
                Some(Usage {
                    prompt_tokens: Some(5),
                    completion_tokens: Some(7)
                }),
                "cut at {cut}"
            );
        }
        let mut s = JsonUsageScanner::default();
        s.observe(br#"{"usage":null,"x":1}"#);
        assert_eq!(s.usage, None);
    }
}
