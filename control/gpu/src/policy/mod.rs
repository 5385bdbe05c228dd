//! The policy: what a reading means for each GPU (a state and an action).
//!
//! [`PolicyConfig`] is the configuration (every field has a default; see docs/gpu-health.md
//! for the table and its sources). [`Policy`] keeps what must outlive one reading: XIDs seen in
//! the last `xid_window`, PCIe replay counts for the replay rate, consecutive probe timeouts,
//! and the hysteresis that keeps a GPU in its worst recent state until `healthy_reads`
//! consecutive readings say otherwise.
//!
//! Semantics, in order of evaluation for one GPU and one reading:
//!
//! 1. Findings come from the reading (probe failures, ECC, retired pages, row remapping,
//!    temperature, throttling, PCIe replay rate, the driver's recovery action) and from every XID
//!    seen on the GPU within `xid_window` (default 10 min), so one XID keeps producing its
//!    finding for the whole window. A GPU seen before and absent from the reading gets
//!    `gpu_missing`.
//! 2. The raw state is the worst finding's severity. If it is at least the published state,
//!    it is published at once (escalation is immediate). If it is lower, the published state
//!    holds (with a `recovering` finding) until `healthy_reads` consecutive readings are below
//!    it; it then falls to the worst state seen in those readings. An XID 79 therefore keeps its
//!    GPU unhealthy for the window and `healthy_reads` clean readings after it.
//! 3. The action is the strongest action among the findings, except that when the driver
//!    reports a recovery action other than `none` (and `recovery_action.outranks_xid`), the
//!    actions of XID findings are replaced by the driver's (their findings stay, with action
//!    `none`). Actions are level-triggered: they repeat on every evaluation while their finding
//!    lasts; [`GpuVerdict::new_findings`] lists the codes that appeared in this evaluation (new
//!    XID events included) for edge-triggered consumers.
//! 4. A `Degraded` state with an action (row remap pending → `reset_gpu`) means: keep serving,
//!    do it at the next quiet window. `Unhealthy` means: take traffic off now.

mod config;
mod config_memory;
mod config_probe;
mod config_signals;
mod evaluate;
mod finding;
mod findings;
mod hysteresis;
mod memory;
mod memory_errors;
mod probe_faults;
mod replays;
mod rule;
mod thermal;
mod verdict;
mod xid;
mod xid_key;
mod xids;

pub use config::PolicyConfig;
pub use config_memory::{RetiredPagesPolicy, RowRemapPolicy};
pub use config_probe::{ProbePolicy, RecoveryActionPolicy};
pub use config_signals::{PcieReplayPolicy, TemperaturePolicy, ThrottlePolicy};
pub use evaluate::Policy;
pub use rule::{Rule, XidRepeat, XidRule};
pub(crate) use verdict::by_index;
pub use verdict::{gpu_states, GpuVerdict};
pub use xid::{xid_info, XidInfo, XID_TABLE};
pub use xid_key::XidKey;

#[cfg(test)]
mod tests;
