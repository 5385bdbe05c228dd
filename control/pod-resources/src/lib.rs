//! The kubelet's PodResources API (v1 `List`): which pods and containers hold which devices.
//!
//! The kubelet serves it as gRPC on a unix socket
//! ([`DEFAULT_SOCKET`](client::DEFAULT_SOCKET)). [`Client::list`] makes the one call this
//! crate needs over hyper's HTTP/2 client, with the few messages it reads written by hand in
//! [`proto`]; [`fake`] is a server for tests that answers from a state the test sets.

pub mod client;
mod error;
pub mod fake;
pub mod grpc;
pub mod proto;

#[cfg(test)]
mod tests;

pub use client::{Client, DEFAULT_SOCKET, LIST_PATH};
pub use error::{Error, ErrorKind};
pub use proto::{ContainerDevices, ContainerResources, PodResources};
