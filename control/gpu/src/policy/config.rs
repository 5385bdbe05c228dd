//! [`PolicyConfig`]: the GPU health policy's configuration, and the effective rule of an XID.

use std::collections::BTreeMap;

use infergate_config::units::Dur;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::config_memory::{RetiredPagesPolicy, RowRemapPolicy};
use super::config_probe::{ProbePolicy, RecoveryActionPolicy};
use super::config_signals::{PcieReplayPolicy, TemperaturePolicy, ThrottlePolicy};
use super::rule::{Rule, XidRule};
use super::xid::{xid_info, XID_TABLE};
use super::xid_key::XidKey;
use crate::health::{Action, Severity};

/// The GPU health policy's configuration. Every field is optional.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Overrides of the built-in XID table, by XID number, merged over it (an entry replaces
    /// the built-in rule for that XID). To ignore an XID: `{severity: healthy, action: none}`.
    pub xid: BTreeMap<XidKey, XidRule>,
    /// XIDs in neither table. Default: degraded, no action (EKS: a warning event only).
    pub unknown_xid: Rule,
    /// How long an XID keeps producing its finding. Default `10m`.
    pub xid_window: Dur,
    /// Consecutive readings below a GPU's state before the state falls. Default 3.
    pub healthy_reads: u32,
    /// Volatile uncorrected ECC errors > 0 (`ecc_volatile_uncorrected`). Default: unhealthy,
    /// reset GPU (as XID 48; DCGM: volatile DBE > 0 → fail).
    pub ecc_volatile_uncorrected: Rule,
    pub retired_pages: RetiredPagesPolicy,
    pub row_remap: RowRemapPolicy,
    pub temperature: TemperaturePolicy,
    pub throttle: ThrottlePolicy,
    pub pcie_replays: PcieReplayPolicy,
    pub probe: ProbePolicy,
    pub recovery_action: RecoveryActionPolicy,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            xid: BTreeMap::new(),
            unknown_xid: Rule::new(Severity::Degraded, Action::None),
            xid_window: Dur::secs(600),
            healthy_reads: 3,
            ecc_volatile_uncorrected: Rule::new(Severity::Unhealthy, Action::ResetGpu),
            retired_pages: RetiredPagesPolicy::default(),
            row_remap: RowRemapPolicy::default(),
            temperature: TemperaturePolicy::default(),
            throttle: ThrottlePolicy::default(),
            pcie_replays: PcieReplayPolicy::default(),
            probe: ProbePolicy::default(),
            recovery_action: RecoveryActionPolicy::default(),
        }
    }
}

impl PolicyConfig {
    /// The rule for an XID: the override, else the built-in table, else `unknown_xid`.
    pub fn xid_rule(&self, xid: u64) -> XidRule {
        if let Some(r) = self.xid.get(&XidKey(xid)) {
            return *r;
        }
        match xid_info(xid) {
            Some(info) => info.rule,
            None => XidRule {
                severity: self.unknown_xid.severity,
                action: self.unknown_xid.action,
                repeat: None,
            },
        }
    }

    /// The effective XID table: built-in rows with the overrides merged over them.
    pub fn xid_table(&self) -> BTreeMap<u64, XidRule> {
        let mut t: BTreeMap<u64, XidRule> = XID_TABLE.iter().map(|i| (i.xid, i.rule)).collect();
        for (k, r) in &self.xid {
            t.insert(k.0, *r);
        }
        t
    }
}
