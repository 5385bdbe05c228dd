//! [`GpuVerdict`]: what the policy concluded about one GPU, and its state on the health feed.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::health::{Action, Finding, GpuState, Severity};

/// What the policy concluded about one GPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuVerdict {
    pub index: u32,
    pub uuid: String,
    /// The published state (after hysteresis).
    pub state: Severity,
    /// Everything found, worst first.
    pub findings: Vec<Finding>,
    /// The strongest action among the findings (see the module documentation).
    pub action: Action,
    /// Codes of the findings that were not there at the previous evaluation, and of XIDs
    /// whose events arrived with this reading.
    pub new_findings: Vec<String>,
}

impl GpuVerdict {
    /// The state as published on the health feed.
    pub fn to_gpu_state(&self, read_at_ms: u64) -> GpuState {
        GpuState {
            index: self.index,
            uuid: self.uuid.clone(),
            state: self.state,
            reasons: if self.state == Severity::Healthy {
                Vec::new()
            } else {
                self.findings.iter().map(|f| f.reason.clone()).collect()
            },
            read_at_ms,
        }
    }
}
/// The states of a set of verdicts, for the health feed.
pub fn gpu_states(verdicts: &[GpuVerdict], read_at_ms: u64) -> Vec<GpuState> {
    verdicts
        .iter()
        .map(|v| v.to_gpu_state(read_at_ms))
        .collect()
}

/// Mapping from GPU index to verdict, for renderers.
pub(crate) fn by_index(verdicts: &[GpuVerdict]) -> HashMap<u32, &GpuVerdict> {
    verdicts.iter().map(|v| (v.index, v)).collect()
}
