//! The configuration of the memory-error findings: retired pages and row remapping.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rule::Rule;
use crate::health::{Action, Severity};

/// Retired pages (dynamic page retirement, before Ampere). DCGM: pending → warn, 63 or more
/// retired pages → fail, more than 15 double-bit retirements → fail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetiredPagesPolicy {
    /// A retirement waits for a GPU reset. Default: degraded, reset at a quiet window.
    pub pending: Rule,
    /// Retired pages (single + double bit) from which `limit` applies. Default 63.
    pub total_limit: u64,
    /// Double-bit retired pages from which `limit` applies. Default 16.
    pub double_bit_limit: u64,
    /// Out of retirement capacity: an RMA candidate. Default: unhealthy, no automatic action
    /// (a reset does not give pages back).
    pub limit: Rule,
}

impl Default for RetiredPagesPolicy {
    fn default() -> Self {
        RetiredPagesPolicy {
            pending: Rule::new(Severity::Degraded, Action::ResetGpu),
            total_limit: 63,
            double_bit_limit: 16,
            limit: Rule::new(Severity::Unhealthy, Action::None),
        }
    }
}

/// Row remapping (Ampere and later).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RowRemapPolicy {
    /// A remapping waits for a GPU reset. Default: degraded, reset at a quiet window.
    pub pending: Rule,
    /// Remapping failed (no spare rows). Default: unhealthy, reset GPU (RMA candidate).
    pub failure: Rule,
    /// Uncorrectable remapped rows from which `uncorrectable` applies. Default 512 (DCGM warn).
    pub uncorrectable_limit: u64,
    /// Default: degraded, no action.
    pub uncorrectable: Rule,
}

impl Default for RowRemapPolicy {
    fn default() -> Self {
        RowRemapPolicy {
            pending: Rule::new(Severity::Degraded, Action::ResetGpu),
            failure: Rule::new(Severity::Unhealthy, Action::ResetGpu),
            uncorrectable_limit: 512,
            uncorrectable: Rule::new(Severity::Degraded, Action::None),
        }
    }
}
