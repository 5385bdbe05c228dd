//! The KV-cache block pool with its prefix cache.
//!
//! Every block is in exactly one of three states:
//!
//! - **empty**: free, holds nothing;
//! - **private**: held by one request, not shareable (its prompt's last partial block and the
//!   blocks of its generated tokens);
//! - **cached**: a full prompt block known by the chained hash of its tokens. A cached block
//!   held by at least one request is shared by all of them; one held by none stays cached, but
//!   counts as free: it is evicted, least recently freed first, when a new block is needed and
//!   no empty block is left.
//!
//! Usage (`vllm:kv_cache_usage_perc`) is the share of blocks held by requests.

use std::collections::{BTreeMap, HashMap};

/// The blocks one request holds.
#[derive(Debug, Default)]
pub struct Alloc {
    /// Cached blocks, in prompt order (each holds one reference).
    shared: Vec<u64>,
    /// Private blocks.
    private: u64,
}

impl Alloc {
    /// Blocks held.
    pub fn blocks(&self) -> u64 {
        self.shared.len() as u64 + self.private
    }
}

/// A cached block: how many requests hold it, and when it was last freed.
#[derive(Debug)]
struct Cached {
    refs: u32,
    stamp: u64,
}

/// A fixed number of blocks, with a prefix cache over the full prompt blocks.
#[derive(Debug)]
pub struct BlockPool {
    total: u64,
    empty: u64,
    private: u64,
    cached: HashMap<u64, Cached>,
    /// Cached blocks no request holds, by the order they were freed (oldest first).
    evictable: BTreeMap<u64, u64>,
    clock: u64,
    caching: bool,
}

impl BlockPool {
    /// `total` blocks; with `caching` off, no block is ever cached.
    pub fn new(total: u64, caching: bool) -> Self {
        Self {
            total,
            empty: total,
            private: 0,
            cached: HashMap::new(),
            evictable: BTreeMap::new(),
            clock: 0,
            caching,
        }
    }

    /// Blocks in the pool.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Blocks that a new allocation can take: empty ones and evictable cached ones.
    pub fn free(&self) -> u64 {
        self.empty + self.evictable.len() as u64
    }

    /// Blocks held by requests.
    pub fn used(&self) -> u64 {
        self.total - self.free()
    }

    /// Share of blocks held by requests, in `[0, 1]`.
    pub fn usage(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        self.used() as f64 / self.total as f64
    }

    /// Cached blocks, held or not.
    #[cfg(test)]
    pub fn cached_blocks(&self) -> usize {
        self.cached.len()
    }

    /// How many leading `hashes` are cached now.
    pub fn hits(&self, hashes: &[u64]) -> usize {
        if !self.caching {
            return 0;
        }
        hashes
            .iter()
            .take_while(|h| self.cached.contains_key(h))
            .count()
    }

    /// Takes one block for new content: an empty one, else the least recently freed cached
    /// one (evicting it from the cache). `None` when every block is held.
    fn take(&mut self) -> Option<()> {
        if self.empty > 0 {
            self.empty -= 1;
            return Some(());
        }
        let (_, hash) = self.evictable.pop_first()?;
        self.cached.remove(&hash);
        Some(())
    }

    /// Allocates `blocks` blocks for a prompt whose full blocks have `hashes` (chained, in
    /// order): leading cached blocks are shared, the other full blocks are computed and
    /// cached, the rest are private. Returns the allocation and how many leading blocks were
    /// cache hits, or `None` (taking nothing) when the pool cannot hold it.
    pub fn allocate(&mut self, hashes: &[u64], blocks: u64) -> Option<(Alloc, usize)> {
        let hits = self.hits(hashes);
        let hashes = hashes.get(
            ..usize::try_from(blocks)
                .unwrap_or(usize::MAX)
                .min(hashes.len()),
        )?;
        let hits = hits.min(hashes.len());
        let (hit, miss) = hashes.split_at(hits);
        let pinned_free = hit
            .iter()
            .filter(|h| self.cached.get(h).is_some_and(|c| c.refs == 0))
            .count() as u64;
        let fresh = blocks.saturating_sub(hits as u64);
        if self.free().saturating_sub(pinned_free) < fresh {
            return None;
        }
        let mut alloc = Alloc::default();
        for hash in hit {
            if let Some(entry) = self.cached.get_mut(hash) {
                if entry.refs == 0 {
                    self.evictable.remove(&entry.stamp);
                }
                entry.refs += 1;
                alloc.shared.push(*hash);
            }
        }
        for hash in miss {
            self.take()?;
            if self.caching && !self.cached.contains_key(hash) {
                self.cached.insert(*hash, Cached { refs: 1, stamp: 0 });
                alloc.shared.push(*hash);
            } else {
                self.private += 1;
                alloc.private += 1;
            }
        }
        for _ in 0..fresh.saturating_sub(miss.len() as u64) {
            self.take()?;
            self.private += 1;
            alloc.private += 1;
        }
        Some((alloc, hits))
    }

    /// One more private block for `alloc`; `false` when every block is held.
    pub fn grow(&mut self, alloc: &mut Alloc) -> bool {
        if self.take().is_none() {
            return false;
        }
        self.private += 1;
        alloc.private += 1;
        true
    }

    /// Gives back every block of `alloc`. Cached blocks nobody holds any more become
    /// evictable, the prompt's last blocks first, so that a prompt's head outlives its tail.
    pub fn release(&mut self, alloc: Alloc) {
        self.private = self.private.saturating_sub(alloc.private);
        self.empty += alloc.private;
        for hash in alloc.shared.iter().rev() {
            if let Some(entry) = self.cached.get_mut(hash) {
                entry.refs = entry.refs.saturating_sub(1);
                if entry.refs == 0 {
                    self.clock += 1;
                    entry.stamp = self.clock;
                    self.evictable.insert(self.clock, *hash);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shared_prefix_blocks_are_hits_and_counted_once() {
        let mut pool = BlockPool::new(10, true);
        let (a, hits) = pool.allocate(&[1, 2, 3], 4).unwrap();
        assert_eq!((hits, a.blocks(), pool.used()), (0, 4, 4));
        let (b, hits) = pool.allocate(&[1, 2, 9], 4).unwrap();
        assert_eq!(hits, 2);
        assert_eq!(pool.used(), 6, "two shared blocks, two new ones");
        pool.release(a);
        assert_eq!(pool.used(), 4, "block 3 and a's private block are free");
        pool.release(b);
        assert_eq!((pool.used(), pool.free(), pool.cached_blocks()), (0, 10, 4));
        assert_eq!(pool.hits(&[1, 2, 3, 4]), 3);
    }

    #[test]
    fn full_pool_refuses_and_evicts_least_recently_freed() {
        let mut pool = BlockPool::new(4, true);
        let (a, _) = pool.allocate(&[1, 2], 2).unwrap();
        let (b, _) = pool.allocate(&[5, 6], 2).unwrap();
        assert!(pool.allocate(&[7], 1).is_none());
        let mut b = b;
        assert!(!pool.grow(&mut b));
        pool.release(a); // 2 then 1 become evictable
        pool.release(b); // 6 then 5
        let (c, hits) = pool.allocate(&[8, 9], 2).unwrap();
        assert_eq!(hits, 0);
        assert_eq!(
            pool.hits(&[1, 2]),
            0,
            "the oldest freed (2, then 1) are evicted"
        );
        assert_eq!(pool.hits(&[5, 6]), 2);
        pool.release(c);
    }

    #[test]
    fn caching_off_never_hits() {
        let mut pool = BlockPool::new(4, false);
        let (a, _) = pool.allocate(&[1, 2], 3).unwrap();
        pool.release(a);
        assert_eq!(pool.hits(&[1, 2]), 0);
        assert_eq!(pool.free(), 4);
        assert_eq!(pool.cached_blocks(), 0);
    }
}
