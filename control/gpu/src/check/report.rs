//! [`CheckReport`]: the JSON form of a check.

use serde::{Deserialize, Serialize};

use crate::health::{GpuReading, NodeReading, Severity};
use crate::policy::{by_index, GpuVerdict};

/// The JSON form of a check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    pub node: String,
    pub driver_version: Option<String>,
    pub read_at_ms: u64,
    /// `healthy`, `degraded` or `unhealthy`: the worst GPU state; absent when nothing was read.
    pub state: Option<Severity>,
    pub exit_code: i32,
    /// Why the GPUs could not be read.
    pub error: Option<String>,
    pub gpus: Vec<CheckedGpu>,
}

/// One GPU's reading and verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckedGpu {
    pub reading: GpuReading,
    pub verdict: Option<GpuVerdict>,
}

pub(super) fn report(
    reading: &NodeReading,
    verdicts: &[GpuVerdict],
    state: Option<Severity>,
    exit_code: i32,
    error: Option<String>,
) -> CheckReport {
    let by = by_index(verdicts);
    CheckReport {
        node: reading.node.clone(),
        driver_version: reading.driver_version.clone(),
        read_at_ms: reading.read_at_ms,
        state,
        exit_code,
        error,
        gpus: reading
            .gpus
            .iter()
            .map(|g| CheckedGpu {
                reading: g.clone(),
                verdict: by.get(&g.index).map(|v| (*v).clone()),
            })
            .collect(),
    }
}

pub(super) fn to_json(report: &CheckReport) -> String {
    serde_json::to_string_pretty(report)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise the report: {e}\"}}"))
}
