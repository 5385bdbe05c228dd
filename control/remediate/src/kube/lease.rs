//! The cluster-wide cap on nodes under remediation: K `coordination.k8s.io/v1` Leases
//! `<prefix>-0` .. `<prefix>-(K-1)` in the control namespace, each held by at most one node.
//!
//! A slot is taken by creating its Lease (409 if another node created it first) or by updating
//! a free or expired one with the `resourceVersion` just read (409 if another node updated it
//! first). The holder renews it every third of `lease_duration`; a crashed holder's slot frees
//! itself when the lease expires.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;

use super::params::post_params;
use super::KubeActions;
use crate::actions::{ActionError, BoxFuture, LockTicket, RemediationLock};

impl KubeActions {
    fn leases(&self) -> Api<Lease> {
        Api::namespaced(self.client.clone(), &self.config.namespace)
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.config.lease_duration.get().as_secs()).unwrap_or(i32::MAX)
    }

    /// Takes slot `name` if it is free, expired or already ours.
    async fn take(&self, name: &str) -> Result<Option<LockTicket>, ActionError> {
        let leases = self.leases();
        let now = MicroTime(Timestamp::now());
        let Some(mut lease) = leases.get_opt(name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.node.clone()),
                    lease_duration_seconds: Some(self.lease_seconds()),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match leases.create(&post_params(), &lease).await {
                Ok(created) => Ok(Some(ticket(name, &created))),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
                Err(e) => Err(e.into()),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let ours = holder == self.node;
        if !(ours || holder.is_empty() || expired(spec, Timestamp::now())) {
            return Ok(None);
        }
        if !ours {
            spec.holder_identity = Some(self.node.clone());
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(self.lease_seconds());
        // `lease` carries the resourceVersion just read: a concurrent taker makes this a 409.
        match leases.replace(name, &post_params(), &lease).await {
            Ok(updated) => Ok(Some(ticket(name, &updated))),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies `edit` to slot `slot` if this node holds it: read, check we still hold it, write
    /// with that resourceVersion; one more round on a conflict. The updated lease, or `None`
    /// when the slot is gone, held by another node, or still in conflict.
    async fn update_held(
        &self,
        slot: &str,
        edit: impl Fn(&mut LeaseSpec),
    ) -> Result<Option<Lease>, ActionError> {
        let leases = self.leases();
        for _ in 0..2 {
            let Some(mut lease) = leases.get_opt(slot).await? else {
                return Ok(None);
            };
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_deref() != Some(self.node.as_str()) {
                return Ok(None);
            }
            edit(spec);
            match leases.replace(slot, &post_params(), &lease).await {
                Ok(updated) => return Ok(Some(updated)),
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }
}

fn ticket(name: &str, lease: &Lease) -> LockTicket {
    LockTicket {
        slot: name.into(),
        resource_version: lease.metadata.resource_version.clone(),
    }
}

/// `renewTime + leaseDurationSeconds` is in the past (or the lease was never renewed).
fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(renewed) = spec.renew_time.as_ref().map(|t| t.0) else {
        return true;
    };
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    match renewed.checked_add(duration) {
        Ok(until) => until < now,
        Err(_) => false,
    }
}

impl RemediationLock for KubeActions {
    fn try_acquire(&self) -> BoxFuture<'_, Result<Option<LockTicket>, ActionError>> {
        Box::pin(async move {
            for name in self.config.lease_names() {
                if let Some(ticket) = self.take(&name).await? {
                    tracing::info!(node = %self.node, lease = %name, "remediation lease acquired");
                    return Ok(Some(ticket));
                }
            }
            Ok(None)
        })
    }

    fn renew<'a>(&'a self, ticket: &'a mut LockTicket) -> BoxFuture<'a, Result<bool, ActionError>> {
        Box::pin(async move {
            let renewed = self
                .update_held(&ticket.slot, |spec| {
                    spec.renew_time = Some(MicroTime(Timestamp::now()));
                })
                .await?;
            Ok(match renewed {
                Some(updated) => {
                    ticket.resource_version = updated.metadata.resource_version;
                    true
                }
                None => false,
            })
        })
    }

    fn release(&self, ticket: LockTicket) -> BoxFuture<'_, Result<(), ActionError>> {
        Box::pin(async move {
            let released = self
                .update_held(&ticket.slot, |spec| spec.holder_identity = None)
                .await?;
            if released.is_some() {
                tracing::info!(node = %self.node, lease = %ticket.slot, "remediation lease released");
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry() {
        let now = Timestamp::now();
        let spec = |ago: i64| LeaseSpec {
            renew_time: Some(MicroTime(now - SignedDuration::from_secs(ago))),
            lease_duration_seconds: Some(60),
            ..LeaseSpec::default()
        };
        assert!(!expired(&spec(10), now));
        assert!(expired(&spec(61), now));
        assert!(expired(&LeaseSpec::default(), now));
    }
}
