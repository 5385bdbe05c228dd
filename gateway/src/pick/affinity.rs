//! Prefix affinity: consistent hashing with bounded load. The prefix hash is a position on the
//! ring; the first endpoint at or after it is the prefix's home. An endpoint takes the request
//! while its in-flight count is under the bound `ceil(load_factor × (in-flight of the variant's
//! endpoints + 1) / endpoints)`; over it (or ejected, excluded, full, or not in the variant)
//! the walk goes on to the next endpoint on the ring. The in-flight total is exact up to 64
//! endpoints and estimated from 64 evenly spaced ones above, so the cost stays flat.

use tokio::time::Instant;

use super::Choice;
use crate::backend::BackendRt;
use crate::pick_policy::{Affinity, Reason};

/// Most distinct endpoints looked at before the policy decides instead.
const MAX_HOPS: usize = 32;
/// Endpoints read for the load bound.
const LOAD_SAMPLE: usize = 64;

impl BackendRt {
    pub(super) fn affine(
        &self,
        a: &Affinity,
        members: &[usize],
        exclude: &[usize],
        now: Instant,
        hash: u64,
    ) -> Option<Choice> {
        let m = members.len();
        if m == 0 || a.ring.is_empty() {
            return None;
        }
        let load = |i: usize| u64::from(self.endpoints[members[i]].state.in_flight());
        let total = if m <= LOAD_SAMPLE {
            (0..m).map(load).sum::<u64>()
        } else {
            let step = m / LOAD_SAMPLE;
            let seen: u64 = (0..LOAD_SAMPLE).map(|k| load(k * step)).sum();
            seen * m as u64 / LOAD_SAMPLE as u64
        };
        let bound = (a.load_factor * (total as f64 + 1.0) / m as f64).ceil() as u32;
        let bound = bound.max(1);
        let mut looked: Vec<usize> = Vec::with_capacity(8);
        for idx in a.ring.walk(hash) {
            if looked.len() >= MAX_HOPS {
                break;
            }
            if looked.contains(&idx) {
                continue;
            }
            looked.push(idx);
            let Ok(pos) = members.binary_search(&idx) else {
                continue;
            };
            if !self.usable(members, exclude, pos, now) {
                continue;
            }
            let state = &self.endpoints[idx].state;
            if state.in_flight() >= bound {
                continue;
            }
            if let Some(guard) = self.take(members, pos) {
                let hops = looked.len() - 1;
                let reason = if hops == 0 {
                    Reason::AffinityHit
                } else {
                    Reason::Spill {
                        hops: u32::try_from(hops).unwrap_or(u32::MAX),
                    }
                };
                return Some(Choice { pos, guard, reason });
            }
        }
        None
    }
}
