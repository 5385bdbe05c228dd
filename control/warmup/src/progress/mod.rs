//! Shared, always-readable progress of a warmup: its state, counts and rate.

mod rate;
mod snapshot;
mod state;
mod tracker;
mod update;

pub use snapshot::ProgressSnapshot;
pub use state::WarmupState;
pub use tracker::Progress;

#[cfg(test)]
mod tests;
