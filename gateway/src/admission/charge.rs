//! What a request took from its tenant's token bucket, given back or settled when it ends.

use std::sync::Arc;

use super::estimate::Estimate;

/// Where a charge's tokens go back to: the tenants' buckets.
pub trait Refund: Send + Sync {
    /// Gives `delta` tokens back to `key`'s bucket of `limit` per minute (negative: takes
    /// them).
    fn adjust(&self, key: &str, limit: u64, delta: i64);
}

/// The tokens a request took before it was sent. [`Charge::settle`] replaces the estimate by
/// what the response used; a charge dropped unsettled gives every token back.
pub struct Charge {
    tenants: Arc<dyn Refund>,
    key: Box<str>,
    limit: u64,
    estimate: Estimate,
    settled: bool,
}

impl Charge {
    pub(super) fn new(
        tenants: Arc<dyn Refund>,
        key: &str,
        limit: u64,
        estimate: Estimate,
    ) -> Charge {
        Charge {
            tenants,
            key: key.into(),
            limit,
            estimate,
            settled: false,
        }
    }

    /// Settles on the response's usage: `prompt` and `completion` from its `usage` when it
    /// reported them, `events` the token events counted, `success` whether it ended well.
    /// Without usage: the estimated prompt plus the events seen, or the whole estimate for a
    /// successful response with no events (a plain JSON body without `usage`), or nothing for
    /// a failure that produced no token.
    pub fn settle(
        mut self,
        prompt: Option<u64>,
        completion: Option<u64>,
        events: u64,
        success: bool,
    ) {
        self.settled = true;
        let e = self.estimate;
        let used = if prompt.is_some() || completion.is_some() {
            prompt
                .unwrap_or(e.prompt)
                .saturating_add(completion.unwrap_or(events))
        } else if events > 0 {
            e.prompt.saturating_add(events)
        } else if success {
            e.total()
        } else {
            0
        };
        let delta =
            i64::try_from(e.total()).unwrap_or(i64::MAX) - i64::try_from(used).unwrap_or(i64::MAX);
        if delta != 0 {
            self.tenants.adjust(&self.key, self.limit, delta);
        }
    }

    pub fn estimate(&self) -> Estimate {
        self.estimate
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if !self.settled {
            let back = i64::try_from(self.estimate.total()).unwrap_or(i64::MAX);
            self.tenants.adjust(&self.key, self.limit, back);
        }
    }
}
