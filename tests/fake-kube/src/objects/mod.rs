//! Builders for the objects tests put into the fake.

mod pod;
mod pool;

pub use pod::FakePod;
pub(crate) use pod::{set_ready, set_terminating};
pub use pool::FakeInferencePool;
