//! The KV-cache model: a pool of fixed-size blocks with a prefix cache, and a vLLM-like
//! scheduler that admits, queues and preempts requests by the blocks they need.

mod pool;
mod prefix;
mod sched;
#[cfg(test)]
mod tests;

pub use prefix::block_hashes;
pub use sched::{Admission, Grow, Refusal, SchedConfig, Scheduler};
