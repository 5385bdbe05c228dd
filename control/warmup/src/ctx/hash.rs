//! SHA-256 of a file's first bytes, continued by the writers when they write exactly at its
//! position.

use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// SHA-256 of bytes `[0, pos)` of a file.
pub(crate) struct HashState {
    pub hasher: Sha256,
    pub pos: u64,
}

impl HashState {
    pub(crate) fn new() -> Self {
        HashState {
            hasher: Sha256::new(),
            pos: 0,
        }
    }
}

/// Hashes `bufs`, just written at `offset`, if they continue the hash exactly. Skips them
/// (they are read back later) when they do not, or when the read-back holds the state.
pub(crate) fn hash_in_order<B: AsRef<[u8]>>(hash: &Mutex<HashState>, offset: u64, bufs: &[B]) {
    let Ok(mut h) = hash.try_lock() else {
        return;
    };
    if h.pos != offset {
        return;
    }
    for b in bufs {
        let b = b.as_ref();
        h.hasher.update(b);
        h.pos += b.len() as u64;
    }
}
