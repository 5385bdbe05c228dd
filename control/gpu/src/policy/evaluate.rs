//! [`Policy`]: the stateful policy, fed every reading of one node in order.

use std::collections::{BTreeMap, BTreeSet};

use crate::health::{CallFault, GpuReading, GpuState, NodeReading};
use crate::probe::ProbeError;

use super::config::PolicyConfig;
use super::finding::finding;
use super::findings::findings_for;
use super::hysteresis::conclude;
use super::memory::GpuMemory;
use super::verdict::{gpu_states, GpuVerdict};
use super::xids::xid_findings;

/// The stateful policy. Feed it every reading of one node, in order.
#[derive(Debug)]
pub struct Policy {
    config: PolicyConfig,
    gpus: BTreeMap<String, GpuMemory>,
    last: Vec<GpuVerdict>,
    last_read_at_ms: u64,
}

impl Policy {
    pub fn new(config: PolicyConfig) -> Self {
        Policy {
            config,
            gpus: BTreeMap::new(),
            last: Vec::new(),
            last_read_at_ms: 0,
        }
    }

    /// The key a GPU's memory is kept under: its UUID, else the UUID last seen at its index,
    /// else `index:N`.
    fn key_for(&self, g: &GpuReading) -> String {
        if !g.uuid.is_empty() {
            return g.uuid.clone();
        }
        self.gpus
            .iter()
            .find(|(_, m)| m.index == g.index)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| format!("index:{}", g.index))
    }

    /// Evaluates one reading of the node: one verdict per GPU in the reading, plus one per GPU
    /// seen before and missing from it, ordered by index.
    pub fn evaluate(&mut self, reading: &NodeReading) -> Vec<GpuVerdict> {
        let now = reading.read_at_ms;
        let mut seen = BTreeSet::new();
        let mut verdicts = Vec::new();
        for g in &reading.gpus {
            let key = self.key_for(g);
            seen.insert(key.clone());
            let mut mem = self.gpus.remove(&key).unwrap_or_default();
            mem.index = g.index;
            if !g.uuid.is_empty() {
                mem.uuid.clone_from(&g.uuid);
            }
            let (findings, new_xids) = findings_for(&self.config, g, &mut mem, now);
            verdicts.push(conclude(
                self.config.healthy_reads,
                &mut mem,
                findings,
                new_xids,
            ));
            self.gpus.insert(key, mem);
        }
        let missing: Vec<String> = self
            .gpus
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for key in missing {
            let Some(mut mem) = self.gpus.remove(&key) else {
                continue;
            };
            let f = finding(
                mem.index,
                "gpu_missing",
                self.config.probe.missing,
                format!(
                    "GPU {} ({}) is no longer reported by the driver",
                    mem.index, mem.uuid
                ),
            );
            let mut findings = vec![f];
            findings.extend(xid_findings(&self.config, &mut mem, now));
            verdicts.push(conclude(
                self.config.healthy_reads,
                &mut mem,
                findings,
                BTreeSet::new(),
            ));
            self.gpus.insert(key, mem);
        }
        verdicts.sort_by(|a, b| a.index.cmp(&b.index).then_with(|| a.uuid.cmp(&b.uuid)));
        self.last = verdicts.clone();
        self.last_read_at_ms = now;
        verdicts
    }

    /// Evaluates a failed read: every GPU seen before gets a `probe_error` finding (with the
    /// `probe.error` rule) and keeps its remembered XIDs.
    pub fn evaluate_failure(&mut self, error: &ProbeError, read_at_ms: u64) -> Vec<GpuVerdict> {
        let gpus = self
            .gpus
            .values()
            .map(|m| GpuReading {
                index: m.index,
                uuid: m.uuid.clone(),
                errors: vec![error.to_string()],
                faults: vec![CallFault::Error],
                ..GpuReading::default()
            })
            .collect();
        let reading = NodeReading {
            node: String::new(),
            driver_version: None,
            gpus,
            read_at_ms,
        };
        self.evaluate(&reading)
    }

    /// The states of the last evaluation, for the health feed.
    pub fn gpu_states(&self) -> Vec<GpuState> {
        gpu_states(&self.last, self.last_read_at_ms)
    }

    /// Forgets the XIDs remembered for a GPU (after a successful reset or reboot). Its state
    /// still falls only after `healthy_reads` clean readings. Returns whether it was known.
    pub fn clear_xids(&mut self, uuid: &str) -> bool {
        match self.gpus.get_mut(uuid) {
            Some(m) => {
                m.xids.clear();
                true
            }
            None => false,
        }
    }

    /// Forgets a GPU altogether (it was removed on purpose: no more `gpu_missing`).
    pub fn forget_gpu(&mut self, uuid: &str) -> bool {
        self.gpus.remove(uuid).is_some()
    }
}
