//! The consistent-hash ring of prefix affinity: `points` positions per endpoint, placed by the
//! hash of its URL, so that an endpoint keeps its positions across reloads and in every gateway
//! replica, and an endpoint that joins or leaves moves only the prefixes next to it.

use crate::prefix::hash64;

pub struct Ring {
    /// (position, endpoint index), sorted by position.
    points: Vec<(u64, u32)>,
}

impl Ring {
    /// A ring over endpoints given by their URLs, in index order.
    pub fn new<'a>(urls: impl IntoIterator<Item = &'a str>, points: u32) -> Ring {
        let mut v = Vec::new();
        for (i, url) in urls.into_iter().enumerate() {
            let Ok(idx) = u32::try_from(i) else { break };
            let base = hash64(0x9e37_79b9_7f4a_7c15, url.as_bytes());
            for p in 0..u64::from(points) {
                v.push((hash64(base, &p.to_le_bytes()), idx));
            }
        }
        v.sort_unstable();
        Ring { points: v }
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The endpoint indices met walking clockwise from `hash`: the owner of the first position
    /// at or after it first, wrapping around once. An endpoint appears once per point.
    pub fn walk(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let start = self.points.partition_point(|p| p.0 < hash);
        let n = self.points.len();
        (0..n).map(move |k| self.points[(start + k) % n].1 as usize)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn placements_spread_and_survive_a_leaving_endpoint() {
        let urls: Vec<String> = (0..8).map(|i| format!("http://10.0.0.{i}:8000")).collect();
        let ring = Ring::new(urls.iter().map(String::as_str), 32);
        assert_eq!(ring.len(), 256);
        let mut owners = [0u32; 8];
        let keys: Vec<u64> = (0..4000u64).map(|k| hash64(7, &k.to_le_bytes())).collect();
        for &k in &keys {
            owners[ring.walk(k).next().unwrap()] += 1;
        }
        // Every endpoint owns a fair share (500 expected).
        assert!(
            owners.iter().all(|&n| (200..900).contains(&n)),
            "{owners:?}"
        );
        // Without endpoint 3, only its keys move.
        let fewer: Vec<&str> = urls
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 3)
            .map(|(_, u)| u.as_str())
            .collect();
        let ring2 = Ring::new(fewer, 32);
        for &k in &keys {
            let before = ring.walk(k).next().unwrap();
            let after = ring2.walk(k).next().unwrap();
            let after = if after >= 3 { after + 1 } else { after };
            if before != 3 {
                assert_eq!(before, after);
            }
        }
        // The walk wraps around and visits every point once.
        assert_eq!(ring.walk(u64::MAX).count(), 256);
    }
}
