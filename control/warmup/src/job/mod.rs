//! The warmup job: what to fetch, from where, to where, and how hard.

mod source;
mod spec;
mod tuning;

pub use source::Source;
pub use spec::WarmupJob;
pub use tuning::Tuning;

#[cfg(test)]
mod tests;
