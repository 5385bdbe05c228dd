//! An InferencePool (inference.networking.k8s.io/v1) as a test describes it.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// An InferencePool to put into the fake with [`crate::FakeKube::apply_inference_pool`].
///
/// Serves the v1 shape: `spec.selector.matchLabels`, `spec.targetPorts[].number` and
/// `spec.endpointPickerRef` (`name`, `kind: Service`, `portNumber`, `failureMode`).
/// [`FakeInferencePool::raw_spec`] replaces the whole spec, for malformed objects.
#[derive(Clone, Debug, PartialEq)]
pub struct FakeInferencePool {
    pub(crate) namespace: String,
    pub(crate) name: String,
    match_labels: BTreeMap<String, String>,
    target_ports: Vec<u16>,
    picker: String,
    picker_port: Option<u16>,
    raw_spec: Option<Value>,
}

impl FakeInferencePool {
    /// A pool `namespace/name` with an empty selector, no target port and an endpoint
    /// picker Service named `<name>-epp` on port 9002.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        let name = name.into();
        FakeInferencePool {
            namespace: namespace.into(),
            picker: format!("{name}-epp"),
            name,
            match_labels: BTreeMap::new(),
            target_ports: Vec::new(),
            picker_port: Some(9002),
            raw_spec: None,
        }
    }

    /// Adds `key: value` to `spec.selector.matchLabels`.
    #[must_use]
    pub fn selector(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.match_labels.insert(key.into(), value.into());
        self
    }

    /// Adds an entry to `spec.targetPorts`.
    #[must_use]
    pub fn target_port(mut self, number: u16) -> Self {
        self.target_ports.push(number);
        self
    }

    /// `spec.endpointPickerRef`: the Service's name and port.
    #[must_use]
    pub fn endpoint_picker(mut self, service: impl Into<String>, port: Option<u16>) -> Self {
        self.picker = service.into();
        self.picker_port = port;
        self
    }

    /// Serves `spec` as given, ignoring the other builder settings.
    #[must_use]
    pub fn raw_spec(mut self, spec: Value) -> Self {
        self.raw_spec = Some(spec);
        self
    }

    pub(crate) fn to_json(&self) -> Value {
        let spec = match &self.raw_spec {
            Some(spec) => spec.clone(),
            None => {
                let labels: Map<String, Value> = self
                    .match_labels
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                let ports: Vec<Value> = self
                    .target_ports
                    .iter()
                    .map(|n| json!({"number": n}))
                    .collect();
                let mut picker = json!({"group": "", "kind": "Service", "name": self.picker, "failureMode": "FailClose"});
                if let (Some(port), Some(obj)) = (self.picker_port, picker.as_object_mut()) {
                    obj.insert("portNumber".into(), Value::from(port));
                }
                json!({"selector": {"matchLabels": labels}, "targetPorts": ports, "endpointPickerRef": picker})
            }
        };
        json!({
            "apiVersion": "inference.networking.k8s.io/v1",
            "kind": "InferencePool",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": spec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_json_has_the_v1_fields() {
        let pool = FakeInferencePool::new("models", "qwen")
            .selector("app", "vllm")
            .target_port(8000)
            .to_json();
        assert_eq!(pool["spec"]["selector"]["matchLabels"]["app"], "vllm");
        assert_eq!(pool["spec"]["targetPorts"][0]["number"], 8000);
        assert_eq!(pool["spec"]["endpointPickerRef"]["name"], "qwen-epp");
        assert_eq!(pool["spec"]["endpointPickerRef"]["portNumber"], 9002);
        let raw = FakeInferencePool::new("m", "p")
            .raw_spec(json!({"selector": 3}))
            .to_json();
        assert_eq!(raw["spec"], json!({"selector": 3}));
    }
}
