//! The token estimate of a request before it is sent: its prompt size and the output it asks
//! for, read from the body bytes without building them.
//!
//! - Prompt: the body's length in bytes / 4, rounded up. It counts the JSON around the prompt
//!   too, so it overestimates; the real `usage` settles it when the response ends.
//! - Output: the top-level `max_completion_tokens`, else `max_tokens`, else the configured
//!   default (`admission.rate_limits.default_max_tokens`).

/// A request's estimated tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Estimate {
    pub prompt: u64,
    pub output: u64,
}

impl Estimate {
    pub fn of(body: &[u8], default_output: u64) -> Estimate {
        let asked = max_tokens(body);
        Estimate {
            prompt: (body.len() as u64).div_ceil(4),
            output: asked.unwrap_or(default_output),
        }
    }

    pub fn total(self) -> u64 {
        self.prompt.saturating_add(self.output)
    }
}

/// The top-level `max_completion_tokens` (preferred) or `max_tokens` of a JSON object, when it
/// is a non-negative integer. The body was already checked as JSON (the model reader does),
/// so this scanner only tracks nesting and strings: it skips string contents with `memchr`,
/// and reads a number only after one of the two keys at depth 1. A key written with escapes
/// is not recognised (the estimate then uses the default; usage settles it).
pub fn max_tokens(body: &[u8]) -> Option<u64> {
    let mut depth = 0u32;
    // At depth 1: the next string is a key.
    let mut expect_key = false;
    // The value after the last key belongs to one of the two keys: 1 max_tokens, 2
    // max_completion_tokens.
    let mut wanted = 0u8;
    let (mut max, mut completion) = (None, None);
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'{' => {
                depth += 1;
                expect_key = depth == 1;
                wanted = 0;
            }
            b'[' => {
                depth += 1;
                wanted = 0;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                expect_key = false;
            }
            b',' => expect_key = depth == 1,
            b'"' => {
                let end = string_end(body, i + 1)?;
                if depth == 1 && expect_key {
                    wanted = match &body[i + 1..end] {
                        b"max_tokens" => 1,
                        b"max_completion_tokens" => 2,
                        _ => 0,
                    };
                    expect_key = false;
                } else {
                    wanted = 0;
                }
                i = end;
            }
            b'0'..=b'9' if depth == 1 && wanted != 0 => {
                let start = i;
                while i < body.len() && body[i].is_ascii_digit() {
                    i += 1;
                }
                // An integer only: a fraction or exponent is not a token count.
                let whole = !matches!(body.get(i), Some(b'.' | b'e' | b'E'));
                let n = std::str::from_utf8(&body[start..i])
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .filter(|_| whole);
                match wanted {
                    1 => max = max.or(n),
                    _ => completion = completion.or(n),
                }
                wanted = 0;
                continue;
            }
            b':' | b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => wanted = 0,
        }
        i += 1;
    }
    completion.or(max)
}

/// The index of the quote that closes the string whose contents start at `from`.
fn string_end(body: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let j = from + memchr::memchr2(b'"', b'\\', body.get(from..)?)?;
        if body[j] == b'"' {
            return Some(j);
        }
        // A backslash escapes the next byte (for `\uXXXX`, the `u`; the hex digits are
        // plain bytes).
        from = j + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_top_level_max_tokens_and_prefers_max_completion_tokens() {
        assert_eq!(max_tokens(br#"{"model":"m","max_tokens":17}"#), Some(17));
        assert_eq!(
            max_tokens(br#"{"max_tokens": 5, "max_completion_tokens" : 9}"#),
            Some(9)
        );
        assert_eq!(
            max_tokens(br#"{"max_completion_tokens":3,"max_tokens":8}"#),
            Some(3)
        );
        assert_eq!(max_tokens(br#"{"model":"m"}"#), None);
    }

    #[test]
    fn ignores_nested_keys_strings_and_non_integers() {
        // Nested objects and arrays, a key-like string value, escaped quotes.
        let body = br#"{"messages":[{"content":"\"max_tokens\": 99","max_tokens":98}],
            "extra":{"max_tokens":97},"note":"max_tokens","max_tokens":12}"#;
        assert_eq!(max_tokens(body), Some(12));
        assert_eq!(max_tokens(br#"{"max_tokens":null}"#), None);
        assert_eq!(max_tokens(br#"{"max_tokens":"40"}"#), None);
        assert_eq!(max_tokens(br#"{"max_tokens":4.5}"#), None);
        assert_eq!(max_tokens(br#"{"max_tokens":1e3}"#), None);
        assert_eq!(max_tokens(br#"{"max_tokens":-4}"#), None);
        // A value that is a key of the right name as a string: not a number.
        assert_eq!(max_tokens(br#"{"a":"max_tokens","b":5}"#), None);
        // Unterminated input never reads past the end.
        assert_eq!(max_tokens(br#"{"max_tokens":"#), None);
        assert_eq!(max_tokens(br#"{"a":"\"#), None);
    }

    #[test]
    fn the_estimate_is_bytes_over_four_plus_the_output() {
        let body = br#"{"model":"m","prompt":"hello there","max_tokens":10}"#;
        let e = Estimate::of(body, 256);
        assert_eq!(e.prompt, (body.len() as u64).div_ceil(4));
        assert_eq!(e.output, 10);
        assert_eq!(Estimate::of(br#"{"model":"m"}"#, 256).output, 256);
        assert_eq!(e.total(), e.prompt + 10);
    }
}
