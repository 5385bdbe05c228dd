//! Hashes of a prompt's full token blocks, as keys of the prefix cache.

/// FNV-1a over `bytes`, continuing from `state`.
fn fnv(state: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(state, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// The chained hashes of the full blocks of `block_size` tokens of a prompt made of `texts`,
/// tokenized like [`count_tokens`](crate::sim::count_tokens) (whitespace-separated words).
/// Block `i`'s hash covers every token up to the end of block `i`, so equal hashes mean equal
/// prefixes. A trailing partial block has no hash. Empty when `block_size` is 0.
pub fn block_hashes<'a>(texts: impl IntoIterator<Item = &'a str>, block_size: u32) -> Vec<u64> {
    let mut hashes = Vec::new();
    if block_size == 0 {
        return hashes;
    }
    let mut state = FNV_OFFSET;
    let mut in_block = 0u32;
    for word in texts.into_iter().flat_map(str::split_whitespace) {
        state = fnv(state, word.as_bytes());
        // A separator that no word contains keeps "ab c" apart from "a bc".
        state = fnv(state, &[0]);
        in_block += 1;
        if in_block == block_size {
            hashes.push(state);
            in_block = 0;
        }
    }
    hashes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_blocks_are_hashed_by_their_whole_prefix() {
        let a = block_hashes(["a b c d", "e"], 2);
        assert_eq!(a.len(), 2, "the fifth word is a partial block");
        let b = block_hashes(["a b", "c d x y"], 2);
        assert_eq!(a, b[..2], "the same words in other texts hash alike");
        assert_ne!(a[1], block_hashes(["a b c e"], 2)[1]);
        let c = block_hashes(["z b c d"], 2);
        assert_ne!(a[1], c[1], "a later block depends on the earlier ones");
        assert_ne!(block_hashes(["ab c"], 2), block_hashes(["a bc"], 2));
        assert!(block_hashes(["a b"], 0).is_empty());
    }
}
