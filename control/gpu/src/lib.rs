//! GPU health: what a probe reads from a GPU ([`health::GpuReading`]), what the policy makes of
//! it ([`health::Finding`], with a [`health::Severity`] and an [`health::Action`]), and the
//! per-GPU state published on the health feed ([`health::GpuState`]).
//!
//! - [`probe`]: the [`probe::GpuProbe`] trait and [`probe::ProbeError`].
//! - [`nvml`]: [`nvml::NvmlProbe`], the real probe (NVML through nvml-wrapper, every call
//!   bounded in time, XID events on their own thread).
//! - [`fake`]: [`fake::FakeProbe`], a scripted probe for tests.
//! - [`policy`]: [`policy::PolicyConfig`] and the stateful [`policy::Policy`].
//! - [`check`]: the one-shot check behind `infergate-control gpu-check`.
//!
//! docs/gpu-health.md describes the policy, its sources, and the fake NVML library
//! (`control/fake-nvml`) the NVML probe is tested against.

pub mod check;
pub mod fake;
pub mod health;
pub mod nvml;
pub mod policy;
pub mod probe;
