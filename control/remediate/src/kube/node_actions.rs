//! [`NodeActions`] for [`KubeActions`]: each action as Kubernetes API calls.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch};
use kube::Api;
use serde_json::json;

use super::params::{now_rfc3339, parse_time, patch_params, post_params, truncate};
use super::{KubeActions, EVENT_NAMESPACE, FIELD_MANAGER};
use crate::actions::{ActionError, BoxFuture, NodeActions};
use crate::types::{
    Cause, Cordon, EvictionReport, FleetHealth, GpuCondition, HostRequest, NodeEvent, NodeState,
    NodeTaint,
};
use crate::{
    ANNOTATION_CORDONED_BY, ANNOTATION_REQUESTED_ACTION, ANNOTATION_REQUESTED_AT,
    ANNOTATION_REQUESTED_BOOT_ID,
};

impl NodeActions for KubeActions {
    fn node_state(&self) -> BoxFuture<'_, Result<NodeState, ActionError>> {
        Box::pin(async move {
            let node = self.nodes().get(&self.node).await?;
            let annotations = node.metadata.annotations.unwrap_or_default();
            let spec = node.spec.unwrap_or_default();
            let status = node.status.unwrap_or_default();
            let boot_id = status
                .node_info
                .as_ref()
                .map(|i| i.boot_id.clone())
                .filter(|b| !b.is_empty());
            let condition_healthy = status
                .conditions
                .unwrap_or_default()
                .into_iter()
                .find(|c| c.type_ == self.config.condition_type)
                .map(|c| c.status == "True");
            Ok(NodeState {
                unschedulable: spec.unschedulable.unwrap_or(false),
                cordoned_by_us: annotations.contains_key(ANNOTATION_CORDONED_BY),
                condition_healthy,
                taint_value: spec
                    .taints
                    .unwrap_or_default()
                    .into_iter()
                    .find(|t| t.key == self.config.taint_key)
                    .map(|t| t.value.unwrap_or_default()),
                requested_action: annotations.get(ANNOTATION_REQUESTED_ACTION).cloned(),
                requested_at: annotations
                    .get(ANNOTATION_REQUESTED_AT)
                    .and_then(|s| parse_time(s)),
                boot_id,
                requested_boot_id: annotations.get(ANNOTATION_REQUESTED_BOOT_ID).cloned(),
            })
        })
    }

    fn fleet_health(&self) -> BoxFuture<'_, Result<Option<FleetHealth>, ActionError>> {
        Box::pin(async move {
            let nodes = self.nodes();
            let mut health = FleetHealth::default();
            let mut params = ListParams::default()
                .labels(&self.config.gpu_node_selector)
                .limit(500);
            loop {
                let page = nodes.list(&params).await?;
                for node in &page.items {
                    health.gpu_nodes += 1;
                    let unhealthy = node
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|cs| {
                            cs.iter().any(|c| {
                                c.type_ == self.config.condition_type && c.status == "False"
                            })
                        });
                    if unhealthy {
                        health.unhealthy += 1;
                    }
                }
                match page.metadata.continue_.filter(|c| !c.is_empty()) {
                    Some(token) => params = params.continue_token(&token),
                    None => break,
                }
            }
            Ok(Some(health))
        })
    }

    fn set_condition<'a>(
        &'a self,
        condition: &'a GpuCondition,
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            // NodeStatus.conditions has patchMergeKey `type`: a strategic-merge patch that
            // lists only our condition leaves the kubelet's conditions untouched.
            let patch = json!({
                "status": { "conditions": [self.condition(condition)] }
            });
            self.nodes()
                .patch_status(&self.node, &patch_params(), &Patch::Strategic(patch))
                .await?;
            Ok(())
        })
    }

    fn add_taint<'a>(
        &'a self,
        taint: &'a NodeTaint,
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<bool, ActionError>> {
        Box::pin(async move {
            let effect = taint.effect.as_str();
            self.edit_taints("add taint", |current| {
                let present = current.iter().any(|t| {
                    t.key == taint.key
                        && t.effect == effect
                        && t.value.as_deref() == Some(taint.value.as_str())
                });
                if present {
                    return None;
                }
                let mut taints: Vec<Taint> = current
                    .iter()
                    .filter(|t| !(t.key == taint.key && t.effect == effect))
                    .cloned()
                    .collect();
                taints.push(Taint {
                    key: taint.key.clone(),
                    value: Some(taint.value.clone()),
                    effect: effect.into(),
                    time_added: None,
                });
                Some(taints)
            })
            .await
        })
    }

    fn remove_taint<'a>(
        &'a self,
        key: &'a str,
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<bool, ActionError>> {
        Box::pin(async move {
            self.edit_taints("remove taint", |current| {
                if !current.iter().any(|t| t.key == key) {
                    return None;
                }
                Some(current.iter().filter(|t| t.key != key).cloned().collect())
            })
            .await
        })
    }

    fn cordon<'a>(&'a self, _cause: &'a Cause) -> BoxFuture<'a, Result<Cordon, ActionError>> {
        Box::pin(async move {
            let node = self.nodes().get(&self.node).await?;
            let ours = node
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(ANNOTATION_CORDONED_BY));
            if node.spec.and_then(|s| s.unschedulable).unwrap_or(false) {
                return Ok(if ours {
                    Cordon::AlreadyOurs
                } else {
                    Cordon::AlreadyCordoned
                });
            }
            // The annotation tells a restarted control process (after the reboot it asked
            // for) that this cordon is ours to undo.
            self.patch_node(Patch::Strategic(json!({
                "metadata": { "annotations": { ANNOTATION_CORDONED_BY: FIELD_MANAGER } },
                "spec": { "unschedulable": true },
            })))
            .await?;
            Ok(Cordon::Cordoned)
        })
    }

    fn uncordon<'a>(&'a self, _cause: &'a Cause) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            self.patch_node(Patch::Strategic(json!({
                "metadata": { "annotations": { ANNOTATION_CORDONED_BY: null } },
                "spec": { "unschedulable": false },
            })))
            .await
        })
    }

    fn evict_pods<'a>(
        &'a self,
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<EvictionReport, ActionError>> {
        Box::pin(self.evict_model_servers())
    }

    fn restart_pods<'a>(
        &'a self,
        gpus: &'a [u32],
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<Vec<String>, ActionError>> {
        Box::pin(self.delete_pods_on(gpus))
    }

    fn request_host_action<'a>(
        &'a self,
        request: &'a HostRequest,
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            // For a reboot, note the boot ID, so that after a restart we can tell whether the
            // reboot happened.
            let boot_id = match request {
                HostRequest::Reboot => self
                    .nodes()
                    .get(&self.node)
                    .await?
                    .status
                    .and_then(|s| s.node_info)
                    .map(|i| i.boot_id),
                HostRequest::ResetGpu { .. } => None,
            };
            self.patch_node(Patch::Merge(json!({
                "metadata": { "annotations": {
                    ANNOTATION_REQUESTED_ACTION: request.annotation_value(),
                    ANNOTATION_REQUESTED_AT: now_rfc3339(),
                    ANNOTATION_REQUESTED_BOOT_ID: boot_id,
                } }
            })))
            .await
        })
    }

    fn clear_host_request<'a>(
        &'a self,
        _cause: &'a Cause,
    ) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            self.patch_node(Patch::Merge(json!({
                "metadata": { "annotations": {
                    ANNOTATION_REQUESTED_ACTION: null,
                    ANNOTATION_REQUESTED_AT: null,
                    ANNOTATION_REQUESTED_BOOT_ID: null,
                } }
            })))
            .await
        })
    }

    fn record_event<'a>(&'a self, event: &'a NodeEvent) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            let now = Time(Timestamp::now());
            let body = Event {
                metadata: ObjectMeta {
                    generate_name: Some(format!("{}.", self.node)),
                    namespace: Some(EVENT_NAMESPACE.into()),
                    ..ObjectMeta::default()
                },
                involved_object: ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Node".into()),
                    name: Some(self.node.clone()),
                    // What the kubelet and node-problem-detector put here, so that
                    // `kubectl describe node` shows the event.
                    uid: Some(self.node.clone()),
                    ..ObjectReference::default()
                },
                type_: Some(event.kind.as_str().into()),
                reason: Some(event.reason.clone()),
                action: Some(event.action.clone()),
                message: Some(truncate(&event.message, 1024)),
                source: Some(EventSource {
                    component: Some(FIELD_MANAGER.into()),
                    host: Some(self.node.clone()),
                }),
                reporting_component: Some(FIELD_MANAGER.into()),
                reporting_instance: Some(self.node.clone()),
                first_timestamp: Some(now.clone()),
                last_timestamp: Some(now),
                count: Some(1),
                ..Event::default()
            };
            Api::<Event>::namespaced(self.client.clone(), EVENT_NAMESPACE)
                .create(&post_params(), &body)
                .await?;
            Ok(())
        })
    }
}
