//! The simulator's output text: one fixed word per token, chosen by token index.

/// Token texts, each with its leading space, as a byte-level tokenizer would emit them.
const WORDS: [&str; 16] = [
    " the", " quick", " brown", " fox", " jumps", " over", " a", " lazy", " dog", " while",
    " models", " stream", " tokens", " through", " every", " gateway",
];

/// The text of output token `index` (0-based). Deterministic: the same index always gives
/// the same word, so tests can predict the output.
pub fn token_text(index: u32) -> &'static str {
    // `index % len` is always in range; `get` keeps this free of panicking indexing.
    WORDS
        .get(index as usize % WORDS.len())
        .copied()
        .unwrap_or(" the")
}

/// The full output of a response with `tokens` tokens: the token texts concatenated.
pub fn output_text(tokens: u32) -> String {
    let mut text = String::with_capacity(tokens as usize * 8);
    for i in 0..tokens {
        text.push_str(token_text(i));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_cycle_through_the_word_list() {
        assert_eq!(token_text(0), " the");
        assert_eq!(token_text(1), " quick");
        assert_eq!(token_text(16), " the");
        assert_eq!(output_text(3), " the quick brown");
        assert_eq!(output_text(0), "");
    }
}
