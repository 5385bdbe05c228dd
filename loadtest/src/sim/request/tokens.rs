//! The dummy tokenizer.

/// The dummy tokenizer: the number of whitespace-separated words across `texts`, at least 1.
///
/// It stands in for a real tokenizer: `prompt_tokens` in `usage` is this count over all
/// message contents (chat), prompts (completions) or inputs (embeddings).
pub fn count_tokens<'a>(texts: impl IntoIterator<Item = &'a str>) -> u64 {
    let words: usize = texts
        .into_iter()
        .map(|text| text.split_whitespace().count())
        .sum();
    (words as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummy_tokenizer_counts_words_with_a_floor_of_one() {
        assert_eq!(count_tokens(["hello world", "  a\tb\nc "]), 5);
        assert_eq!(count_tokens([""]), 1);
        assert_eq!(count_tokens(std::iter::empty()), 1);
    }
}
