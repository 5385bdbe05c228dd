//! Building a [`Remediator`]: from any implementations, for Kubernetes, or for a node without one; and what it shows.

use std::sync::Arc;

use super::Remediator;
use crate::actions::{NodeActions, RemediationLock};
use crate::config::RemediationConfig;
use crate::dry_run::DryRun;
use crate::kube::KubeActions;
use crate::local::{LocalActions, LocalLeases};
use crate::metrics::RemediationMetrics;
use crate::outcome::State;

impl Remediator {
    /// From any implementations (fakes in tests).
    pub fn new(
        config: RemediationConfig,
        node: impl Into<String>,
        actions: Arc<dyn NodeActions>,
        lock: Arc<dyn RemediationLock>,
    ) -> Self {
        Remediator {
            config,
            node: node.into(),
            actions,
            lock,
            metrics: RemediationMetrics::default(),
            restored: false,
            rebooted: false,
            condition: None,
            condition_status: None,
            taint: None,
            fault_since: None,
            episode: None,
            cooldown_until: None,
            cordoned_by_us: false,
            request_pending: false,
            breaker_open: false,
            fleet: None,
            lease_retry_at: None,
            last_suppressed: None,
        }
    }

    /// Through the Kubernetes API (leases in `config.namespace`), wrapped in [`DryRun`] when
    /// `config.dry_run`.
    pub fn kubernetes(config: RemediationConfig, kube: KubeActions) -> Self {
        let node = kube.node().to_owned();
        if config.dry_run {
            let a = Arc::new(DryRun::new(kube));
            Self::new(config, node, a.clone(), a)
        } else {
            let a = Arc::new(kube);
            Self::new(config, node, a.clone(), a)
        }
    }

    /// Without a cluster: [`LocalActions`] with `config.hook`, in-process leases, wrapped in
    /// [`DryRun`] when `config.dry_run`.
    pub fn local(config: RemediationConfig, node: impl Into<String>) -> Self {
        let node = node.into();
        let actions = LocalActions::new(node.clone(), config.hook.clone());
        let lock = LocalLeases::new(config.max_concurrent_nodes, config.lease_duration.get())
            .lock_for(node.clone());
        if config.dry_run {
            Self::new(
                config,
                node,
                Arc::new(DryRun::new(actions)),
                Arc::new(DryRun::new(lock)),
            )
        } else {
            Self::new(config, node, Arc::new(actions), Arc::new(lock))
        }
    }

    /// Counters to export.
    pub fn metrics(&self) -> RemediationMetrics {
        self.metrics.clone()
    }

    /// Where the node stands.
    pub fn state(&self) -> State {
        match &self.episode {
            Some(e) if e.exhausted => State::Exhausted,
            Some(e) => State::Remediating(e.rung),
            None if self.fault_since.is_some() => State::Faulty,
            None => State::Healthy,
        }
    }
}
