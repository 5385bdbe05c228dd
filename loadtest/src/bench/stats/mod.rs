//! Distributions and the summary of a run (or of one sweep step).
//!
//! Percentiles interpolate linearly between the closest ranks (NumPy's default, as vLLM's
//! benchmark uses): `p` is at rank `p/100 * (n − 1)` of the sorted values.

mod distribution;
mod summarize;
mod summary;
#[cfg(test)]
mod tests;

pub use distribution::{percentile, Stats};
pub use summarize::{digest, max_in_flight, meets, summarize};
pub use summary::{
    Concurrency, Counts, ErrorCounts, Goodput, Lag, SloMs, Summary, Throughput, Tokens,
};
