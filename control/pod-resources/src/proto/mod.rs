//! The messages of the kubelet's PodResources API v1 that `List` uses
//! (k8s.io/kubelet/pkg/apis/podresources/v1/api.proto), written and read by hand:
//!
//! ```proto
//! message ListPodResourcesRequest {}
//! message ListPodResourcesResponse { repeated PodResources pod_resources = 1; }
//! message PodResources { string name = 1; string namespace = 2; repeated ContainerResources containers = 3; }
//! message ContainerResources { string name = 1; repeated ContainerDevices devices = 2; ... }
//! message ContainerDevices { string resource_name = 1; repeated string device_ids = 2; TopologyInfo topology = 3; }
//! ```
//!
//! Fields not listed here (CPU IDs, memory, dynamic resources, topology) are skipped.

pub mod wire;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use wire::{put_message, put_string, Key, Reader};
pub use wire::{DecodeError, MAX_MESSAGE};

/// A pod and the devices its containers hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodResources {
    pub name: String,
    pub namespace: String,
    #[serde(default)]
    pub containers: Vec<ContainerResources>,
}

/// A container and the devices it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerResources {
    pub name: String,
    #[serde(default)]
    pub devices: Vec<ContainerDevices>,
}

/// Devices of one resource (e.g. `nvidia.com/gpu`) a container holds, by the IDs the device
/// plugin gave them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerDevices {
    pub resource_name: String,
    #[serde(default)]
    pub device_ids: Vec<String>,
}

/// `ListPodResourcesRequest`: an empty message.
pub fn encode_list_request() -> Vec<u8> {
    Vec::new()
}

/// Reads a `ListPodResourcesRequest`: every field is unknown and skipped.
pub fn decode_list_request(buf: &[u8]) -> Result<(), DecodeError> {
    let mut r = Reader::new(buf)?;
    while !r.at_end() {
        let key = r.key()?;
        r.skip(key)?;
    }
    Ok(())
}

/// `ListPodResourcesResponse`.
pub fn encode_list_response(pods: &[PodResources]) -> Vec<u8> {
    let mut out = Vec::new();
    for pod in pods {
        put_message(&mut out, 1, |m| {
            put_string(m, 1, &pod.name);
            put_string(m, 2, &pod.namespace);
            for c in &pod.containers {
                put_message(m, 3, |m| {
                    put_string(m, 1, &c.name);
                    for d in &c.devices {
                        put_message(m, 2, |m| {
                            put_string(m, 1, &d.resource_name);
                            for id in &d.device_ids {
                                wire::put_bytes(m, 2, id.as_bytes());
                            }
                        });
                    }
                });
            }
        });
    }
    out
}

/// Reads a `ListPodResourcesResponse`.
pub fn decode_list_response(buf: &[u8]) -> Result<Vec<PodResources>, DecodeError> {
    let mut r = Reader::new(buf)?;
    let mut pods = Vec::new();
    while !r.at_end() {
        let key = r.key()?;
        match key.field {
            1 => {
                let inner = r.len_field("ListPodResourcesResponse", key)?;
                let mut inner = r.nested(inner);
                pods.push(pod(&mut inner)?);
            }
            _ => r.skip(key)?,
        }
    }
    Ok(pods)
}

fn pod(r: &mut Reader<'_>) -> Result<PodResources, DecodeError> {
    const MSG: &str = "PodResources";
    let mut p = PodResources::default();
    while !r.at_end() {
        let key = r.key()?;
        match key.field {
            1 => p.name = r.string(MSG, key)?,
            2 => p.namespace = r.string(MSG, key)?,
            3 => {
                let inner = r.len_field(MSG, key)?;
                let mut inner = r.nested(inner);
                p.containers.push(container(&mut inner)?);
            }
            _ => r.skip(key)?,
        }
    }
    Ok(p)
}

fn container(r: &mut Reader<'_>) -> Result<ContainerResources, DecodeError> {
    const MSG: &str = "ContainerResources";
    let mut c = ContainerResources::default();
    while !r.at_end() {
        let key = r.key()?;
        match key.field {
            1 => c.name = r.string(MSG, key)?,
            2 => {
                let inner = r.len_field(MSG, key)?;
                let mut inner = r.nested(inner);
                c.devices.push(devices(&mut inner)?);
            }
            _ => r.skip(key)?,
        }
    }
    Ok(c)
}

fn devices(r: &mut Reader<'_>) -> Result<ContainerDevices, DecodeError> {
    const MSG: &str = "ContainerDevices";
    let mut d = ContainerDevices::default();
    while !r.at_end() {
        let key: Key = r.key()?;
        match key.field {
            1 => d.resource_name = r.string(MSG, key)?,
            2 => d.device_ids.push(r.string(MSG, key)?),
            _ => r.skip(key)?,
        }
    }
    Ok(d)
}
