//! Observers that read a response body as it passes, without holding a copy of it.
//!
//! [`SseObserver`] follows a `text/event-stream` body with the `infergate-wire` SSE parser: per
//! frame, how many events carried a token (the definition in `docs/metrics.md`), and the last
//! `usage`. Only an incomplete line is carried from one frame to the next, and that carry is
//! bounded.
//!
//! [`JsonUsageScanner`] finds the top-level `"usage":{...}` object of a plain JSON response.

/// Longest SSE line kept across frames; a longer line is skipped (and not counted).
pub const MAX_LINE: usize = 256 * 1024;
/// Longest `usage` object read from a JSON body.
const MAX_USAGE: usize = 4096;

pub use infergate_wire::sse::Usage;
use infergate_wire::sse::{Event, SseParser};

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
}

impl Default for SseObserver {
    fn default() -> Self {
        SseObserver {
            parser: SseParser::with_max_line(MAX_LINE),
        }
    }
}

impl SseObserver {
    /// Reads one body frame.
    pub fn observe(&mut self, chunk: &[u8]) -> FrameSeen {
        let mut seen = FrameSeen::default();
        self.parser.feed(chunk, |ev| {
            if ev == Event::Token {
                seen.token_events += 1;
            }
        });
        seen
    }

    /// The last `usage` seen.
    pub fn usage(&self) -> Option<Usage> {
        self.parser.usage
    }
}

/// Finds `"usage": {...}` in a JSON body that arrives in frames.
///
/// A JSON string cannot contain an unescaped `"`, so the bytes `"usage"` followed by `:` only
/// occur as a key. The object after the last such key is collected (at most 4 KiB) and parsed.
#[derive(Debug, Default)]
pub struct JsonUsageScanner {
    /// Up to 8 trailing bytes of the previous frame, to find a key split across frames.
    tail: Vec<u8>,
    /// The usage object being collected, from its `{`.
    object: Vec<u8>,
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// Seen `"usage"`, waiting for `:` and `{`.
    after_key: bool,
    pub usage: Option<Usage>,
}

const KEY: &[u8] = b"\"usage\"";

/// The searcher for [`KEY`], built once.
fn key_finder() -> &'static memchr::memmem::Finder<'static> {
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
        std::sync::OnceLock::new();
    FINDER.get_or_init(|| memchr::memmem::Finder::new(KEY))
}

impl JsonUsageScanner {
    pub fn observe(&mut self, chunk: &[u8]) {
        let mut i = 0;
        // Continue an object or key from the previous frame.
        if self.depth > 0 || self.after_key {
            i = self.advance(chunk, 0);
        } else if !self.tail.is_empty() {
            let mut joined = std::mem::take(&mut self.tail);
            let take = chunk.len().min(KEY.len());
            let old = joined.len();
            joined.extend_from_slice(&chunk[..take]);
            if let Some(pos) = key_finder().find(&joined) {
                let end = pos + KEY.len();
                if end > old {
                    self.after_key = true;
                    i = self.advance(chunk, end - old);
                }
            }
        }
        while i < chunk.len() {
            match key_finder().find(&chunk[i..]) {
                Some(pos) => {
                    self.after_key = true;
                    i = self.advance(chunk, i + pos + KEY.len());
                }
                None => break,
            }
        }
        let keep = chunk.len().min(KEY.len() - 1);
        self.tail.clear();
        if self.depth == 0 && !self.after_key {
            self.tail.extend_from_slice(&chunk[chunk.len() - keep..]);
        }
    }

    /// Consumes bytes of a key's value from `from`; returns where scanning may continue.
    fn advance(&mut self, chunk: &[u8], from: usize) -> usize {
        let mut i = from;
        while self.depth == 0 {
            let Some(&c) = chunk.get(i) else {
                return i;
            };
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b':' => i += 1,
                b'{' => {
                    self.depth = 1;
                    self.object.clear();
                    self.object.push(c);
                    i += 1;
                }
                _ => {
                    // `"usage": null` or a non-object: not a usage object.
                    self.after_key = false;
                    return i;
                }
            }
        }
        let seg = i;
        while i < chunk.len() {
            if self.object.len() + (i - seg) >= MAX_USAGE {
                self.reset();
                return i;
            }
            let c = chunk[i];
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if c == b'\\' {
                    self.escaped = true;
                } else if c == b'"' {
                    self.in_string = false;
                }
            } else {
                match c {
                    b'"' => self.in_string = true,
                    b'{' => self.depth += 1,
                    b'}' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            self.object.extend_from_slice(&chunk[seg..=i]);
                            if let Ok(u) = serde_json::from_slice::<Usage>(&self.object) {
                                self.usage = Some(u);
                            }
                            self.reset();
                            return i + 1;
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        self.object.extend_from_slice(&chunk[seg..i]);
        i
    }

    fn reset(&mut self) {
        self.object.clear();
        self.depth = 0;
        self.in_string = false;
        self.escaped = false;
        self.after_key = false;
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
