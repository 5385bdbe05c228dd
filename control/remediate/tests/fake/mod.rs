//! An in-memory cluster of nodes behind `NodeActions`, recording every call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use infergate_remediate::{
    ActionError, BoxFuture, Cause, Cordon, EvictionReport, FleetHealth, GpuCondition, HostRequest,
    NodeActions, NodeEvent, NodeState, NodeTaint,
};

#[derive(Clone, Debug, Default)]
pub struct FakeNode {
    pub condition: Option<bool>,
    pub cordoned: bool,
    pub taint: Option<String>,
    pub request: Option<String>,
    /// Every call, e.g. `cordon`, `evict`, `request reboot`, `event PodRestarted`.
    pub calls: Vec<String>,
    /// The next evictions report these pods blocked by a PDB.
    pub blocked_evictions: u32,
    /// What `node_state` returns at start.
    pub initial: NodeState,
}

/// Calls that disrupt workloads.
pub const DISRUPTIVE: [&str; 4] = ["restart_pods", "cordon", "evict", "request"];

impl FakeNode {
    pub fn disruptive(&self) -> Vec<String> {
        self.calls
            .iter()
            .filter(|c| DISRUPTIVE.iter().any(|d| c.starts_with(d)))
            .cloned()
            .collect()
    }

    pub fn events(&self) -> Vec<String> {
        self.calls
            .iter()
            .filter_map(|c| c.strip_prefix("event "))
            .map(str::to_owned)
            .collect()
    }

    /// Every call except events and reads.
    pub fn actions(&self) -> Vec<String> {
        self.calls
            .iter()
            .filter(|c| !c.starts_with("event ") && !c.starts_with("read "))
            .cloned()
            .collect()
    }
}

/// The fleet: every node registered counts as a GPU node for the breaker.
#[derive(Clone, Default)]
pub struct FakeCluster {
    nodes: Arc<Mutex<BTreeMap<String, FakeNode>>>,
}

impl FakeCluster {
    pub fn node(&self, name: &str) -> FakeActions {
        self.nodes.lock().unwrap().entry(name.into()).or_default();
        FakeActions {
            node: name.into(),
            cluster: self.clone(),
        }
    }

    pub fn get(&self, name: &str) -> FakeNode {
        self.nodes
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    pub fn with<T>(&self, name: &str, f: impl FnOnce(&mut FakeNode) -> T) -> T {
        f(self.nodes.lock().unwrap().entry(name.into()).or_default())
    }

    pub fn all_disruptive(&self) -> Vec<(String, String)> {
        self.nodes
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(n, s)| s.disruptive().into_iter().map(move |c| (n.clone(), c)))
            .collect()
    }
}

#[derive(Clone)]
pub struct FakeActions {
    node: String,
    cluster: FakeCluster,
}

impl FakeActions {
    fn call<T: Send + 'static>(
        &self,
        what: String,
        f: impl FnOnce(&mut FakeNode) -> T,
    ) -> BoxFuture<'static, Result<T, ActionError>> {
        let value = self.cluster.with(&self.node, |n| {
            n.calls.push(what);
            f(n)
        });
        Box::pin(async move { Ok(value) })
    }
}

impl NodeActions for FakeActions {
    fn node_state(&self) -> BoxFuture<'_, Result<NodeState, ActionError>> {
        self.call("read node_state".into(), |n| n.initial.clone())
    }

    fn fleet_health(&self) -> BoxFuture<'_, Result<Option<FleetHealth>, ActionError>> {
        let nodes = self.cluster.nodes.lock().unwrap();
        let health = FleetHealth {
            gpu_nodes: nodes.len() as u32,
            unhealthy: nodes
                .values()
                .filter(|n| n.condition == Some(false))
                .count() as u32,
        };
        drop(nodes);
        self.call("read fleet_health".into(), move |_| Some(health))
    }

    fn set_condition<'a>(
        &'a self,
        c: &'a GpuCondition,
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        let healthy = c.healthy;
        self.call(format!("set_condition {healthy}"), move |n| {
            n.condition = Some(healthy)
        })
    }

    fn add_taint<'a>(
        &'a self,
        t: &'a NodeTaint,
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<bool, ActionError>> {
        let value = t.value.clone();
        self.call(format!("add_taint {value}"), move |n| {
            let changed = n.taint.as_ref() != Some(&value);
            n.taint = Some(value);
            changed
        })
    }

    fn remove_taint<'a>(
        &'a self,
        _key: &'a str,
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<bool, ActionError>> {
        self.call("remove_taint".into(), |n| n.taint.take().is_some())
    }

    fn cordon<'a>(&'a self, _cause: &'a Cause) -> BoxFuture<'a, Result<Cordon, ActionError>> {
        self.call("cordon".into(), |n| {
            if n.cordoned {
                Cordon::AlreadyOurs
            } else {
                n.cordoned = true;
                Cordon::Cordoned
            }
        })
    }

    fn uncordon<'a>(&'a self, _cause: &'a Cause) -> BoxFuture<'a, Result<(), ActionError>> {
        self.call("uncordon".into(), |n| n.cordoned = false)
    }

    fn evict_pods<'a>(
        &'a self,
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<EvictionReport, ActionError>> {
        self.call("evict".into(), |n| {
            let mut report = EvictionReport::default();
            if n.blocked_evictions > 0 {
                n.blocked_evictions -= 1;
                report.blocked.push("llm/ms-0".into());
            } else {
                report.evicted.push("llm/ms-0".into());
            }
            report
        })
    }

    fn restart_pods<'a>(
        &'a self,
        gpus: &'a [u32],
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>> {
        self.call(
            format!("restart_pods {gpus:?}"),
            |_| vec!["llm/ms-0".into()],
        )
    }

    fn request_host_action<'a>(
        &'a self,
        request: &'a HostRequest,
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        let value = request.annotation_value();
        self.call(format!("request {value}"), move |n| n.request = Some(value))
    }

    fn clear_host_request<'a>(
        &'a self,
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        self.call("clear_request".into(), |n| n.request = None)
    }

    fn record_event<'a>(&'a self, event: &'a NodeEvent) -> BoxFuture<'a, Result<(), ActionError>> {
        self.call(format!("event {}", event.reason), |_| ())
    }
}
