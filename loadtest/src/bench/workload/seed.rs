//! Seeded random streams and hashes: what makes a run repeatable.

use rand::rngs::SmallRng;
use rand::SeedableRng;

/// Random streams: measured requests, warm-up requests, arrivals, dataset order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Measured = 0,
    Warmup = 1,
    Arrivals = 2,
    DatasetOrder = 3,
}

/// SplitMix64: a fast, well-mixed hash of a 64-bit value.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The generator of `stream` (and `index` within it) for `seed`.
pub fn rng_for(seed: u64, stream: Stream, index: u64) -> SmallRng {
    let s = splitmix64(seed ^ splitmix64(((stream as u64) << 56) ^ index));
    SmallRng::seed_from_u64(s)
}

/// FNV-1a, 64 bits: the digest of request bodies.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
