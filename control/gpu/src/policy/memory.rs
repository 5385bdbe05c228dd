//! What the policy remembers about one GPU between readings.

use std::collections::{BTreeSet, VecDeque};

use crate::health::{Severity, XidEvent};

/// What the policy remembers about one GPU.
#[derive(Debug, Default)]
pub(super) struct GpuMemory {
    pub(super) index: u32,
    pub(super) uuid: String,
    pub(super) xids: Vec<XidEvent>,
    pub(super) replays: VecDeque<(u64, u64)>,
    pub(super) published: Option<Severity>,
    pub(super) below_streak: u32,
    pub(super) below_worst: Option<Severity>,
    pub(super) timeout_streak: u32,
    pub(super) last_codes: BTreeSet<String>,
}
