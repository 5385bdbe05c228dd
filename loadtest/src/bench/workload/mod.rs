//! What is sent and when: request bodies (synthetic prompts or a dataset) and the arrival
//! schedule of an open-loop run.
//!
//! Everything random is drawn from generators seeded by the run's seed and a stream number,
//! and, for a request, its index: request `i` of a step has the same prompt and lengths
//! whatever the timing, the load or the number of threads, and the arrival schedule of a rate
//! depends on the seed only. Warm-up requests draw from their own stream, so `--warmup` does
//! not change the measured requests.

mod api;
mod arrivals;
mod body;
mod dataset;
mod requests;
mod seed;
#[cfg(test)]
mod tests;
mod words;

pub use api::Api;
pub use arrivals::{Arrival, Arrivals};
pub use dataset::{Dataset, Entry, Prompt};
pub use requests::{Prepared, Source, Workload};
pub use seed::{fnv1a, rng_for, splitmix64, Stream};
