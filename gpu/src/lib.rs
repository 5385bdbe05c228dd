//! GPU health: what a probe reads from a GPU ([`health::GpuReading`]), what the policy makes of
//! it ([`health::Finding`], with a [`health::Severity`] and an [`health::Action`]), and the
//! per-GPU state published on the health feed ([`health::GpuState`]).

pub mod health;
