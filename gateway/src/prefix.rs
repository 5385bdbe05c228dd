//! The prompt prefix of a request body, for prefix affinity: the raw JSON text of the top-level
//! `messages` (chat) or `prompt` (completions) value, found by a light scan of the bytes the
//! gateway already holds (never parsed into values, never re-serialised), and a hash of its
//! first whole blocks.
//!
//! The body was checked to be JSON by [`crate::model_field`] before this runs, so the scan is
//! lenient: anything unexpected gives no prefix, and the request is placed without affinity.

/// A stable 64-bit hash (FNV-style over 8-byte words, then a SplitMix64 finish): the same bytes
/// hash the same in every gateway replica and version, so replicas agree on placements.
pub fn hash64(seed: u64, bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = 0xcbf2_9ce4_8422_2325 ^ seed;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(b))
            .wrapping_mul(PRIME)
            .rotate_left(23);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(PRIME);
    }
    h ^= bytes.len() as u64;
    // SplitMix64 finish.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The hash of the prompt's first `blocks` whole blocks of `block` bytes: of the JSON text of
/// the top-level `messages` or `prompt` value, from its first byte. A prompt shorter than one
/// block is hashed whole; a longer one is cut down to whole blocks, at most `blocks` of them.
/// `None` when the body has neither key.
pub fn prefix_hash(body: &[u8], block: usize, blocks: usize) -> Option<u64> {
    let block = block.max(1);
    let span = prompt_span(body, block.saturating_mul(blocks.max(1)))?;
    let whole = span.len() / block * block;
    let take = if whole == 0 { span.len() } else { whole };
    Some(hash64(0, &span[..take]))
}

/// The bytes of the first top-level `messages` or `prompt` value, at most `limit` of them (the
/// value is read no further).
pub fn prompt_span(body: &[u8], limit: usize) -> Option<&[u8]> {
    let mut i = skip_ws(body, 0);
    if body.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(body, i);
        match body.get(i)? {
            b'}' => return None,
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let key_end = value_end(body, i, body.len())?;
        let key = &body[i + 1..key_end - 1];
        i = skip_ws(body, key_end);
        if body.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(body, i + 1);
        if key == b"messages" || key == b"prompt" {
            let stop = body.len().min(i.saturating_add(limit));
            let end = value_end(body, i, stop)?;
            return Some(&body[i..end]);
        }
        i = value_end(body, i, body.len())?;
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The index after the value that starts at `i`, read no further than `stop`: `stop` itself
/// when the value goes on past it, `None` when the body ends inside it.
fn value_end(b: &[u8], i: usize, stop: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = i;
    while j < stop {
        match b[j] {
            b'"' => {
                // Jump to the closing quote, over escapes.
                let mut k = j + 1;
                loop {
                    let rest = b.get(k..stop).unwrap_or_default();
                    let Some(off) = memchr::memchr2(b'"', b'\\', rest) else {
                        return (stop < b.len()).then_some(stop);
                    };
                    k += off;
                    if b[k] == b'"' {
                        break;
                    }
                    k += 2;
                }
                if depth == 0 {
                    return Some(k + 1);
                }
                j = k;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                if depth <= 1 {
                    return (depth == 1).then_some(j + 1).or(Some(j));
                }
                depth -= 1;
            }
            b',' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => return Some(j),
            _ => {}
        }
        j += 1;
    }
    (stop < b.len()).then_some(stop)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn finds_messages_and_prompt_after_other_keys() {
        let body = br#"{"model":"m","n":1,"stop":["}",{"a":"]\""}],"messages":[{"role":"user","content":"hi {"}],"x":2}"#;
        assert_eq!(
            prompt_span(body, 1 << 20).unwrap(),
            br#"[{"role":"user","content":"hi {"}]"#
        );
        let body = br#"{ "model" : "m" , "prompt" : "once \"upon\" a time" }"#;
        assert_eq!(
            prompt_span(body, 1 << 20).unwrap(),
            br#""once \"upon\" a time""#
        );
        assert_eq!(prompt_span(br#"{"model":"m","input":"x"}"#, 99), None);
        assert_eq!(prompt_span(br#"[1,2]"#, 99), None);
        assert_eq!(prompt_span(br#"{"messages":[{"a":1}"#, 99), None);
        // The value is read no further than the limit.
        assert_eq!(
            prompt_span(br#"{"prompt":"abcdefgh","x":1}"#, 4).unwrap(),
            br#""abc"#
        );
    }

    #[test]
    fn the_hash_covers_whole_leading_blocks_only() {
        let system = "s".repeat(300);
        let body = |q: &str| {
            format!(
                r#"{{"model":"m","messages":[{{"role":"system","content":"{system}"}},{{"role":"user","content":"{q}"}}]}}"#
            )
        };
        // Two 128-byte blocks fall inside the shared system prompt: same hash.
        let a = prefix_hash(body("what is rust?").as_bytes(), 128, 2).unwrap();
        let b = prefix_hash(body("and go?").as_bytes(), 128, 2).unwrap();
        assert_eq!(a, b);
        // A partial last block is left out: the questions fall into one here.
        let a = prefix_hash(body("what is rust?").as_bytes(), 128, 8).unwrap();
        let b = prefix_hash(body("and go?").as_bytes(), 128, 8).unwrap();
        assert_eq!(a, b);
        // Blocks small enough to reach into the question: different hashes.
        let a = prefix_hash(body("what is rust?").as_bytes(), 16, 64).unwrap();
        let b = prefix_hash(body("and go?").as_bytes(), 16, 64).unwrap();
        assert_ne!(a, b);
        // A prompt shorter than a block is hashed whole.
        let a = prefix_hash(br#"{"prompt":"ab"}"#, 256, 4).unwrap();
        let b = prefix_hash(br#"{"prompt":"ac"}"#, 256, 4).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn hash64_is_stable() {
        // Fixed values: replicas and versions must agree on ring positions.
        assert_eq!(hash64(0, b""), hash64(0, b""));
        assert_ne!(hash64(0, b"a"), hash64(1, b"a"));
        assert_ne!(hash64(0, b"abcdefgh"), hash64(0, b"abcdefgi"));
        assert_ne!(hash64(0, b"a"), hash64(0, b"a\0"));
    }
}
