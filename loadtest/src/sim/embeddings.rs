//! Deterministic fake embeddings.

/// A unit-length vector of `dims` values derived from `text` alone: the same text always
/// embeds to the same vector, different texts (almost always) to different ones.
pub fn embed(text: &str, dims: usize) -> Vec<f32> {
    // FNV-1a of the text seeds a xorshift64* generator.
    let mut state = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    if state == 0 {
        state = 0x9e37_79b9_7f4a_7c15;
    }
    let mut vector: Vec<f32> = (0..dims)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let bits = state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40; // 24 random bits
            (bits as f32 / (1u64 << 23) as f32) - 1.0 // in [-1, 1)
        })
        .collect();
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        for v in &mut vector {
            *v /= norm;
        }
    }
    vector
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embed("hello", 8);
        assert_eq!(a.len(), 8);
        assert_eq!(a, embed("hello", 8));
        assert_ne!(a, embed("world", 8));
        let norm: f32 = a.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        assert!(embed("", 0).is_empty());
    }
}
