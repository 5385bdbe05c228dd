//! `infergate-control`: reads GPUs through NVML, turns readings into findings with a policy,
//! publishes each GPU's state on a health feed that gateways follow, and remediates nodes
//! under a safety policy, and publishes which pods hold which GPUs (from the kubelet's
//! PodResources API).

pub mod config;
pub mod feed;
pub mod pods;
pub mod release_cli;
pub mod releases;
pub mod run;
pub mod server;
pub mod warmup;
