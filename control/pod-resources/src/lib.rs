//! The kubelet's PodResources API (v1 `List`): which pods and containers hold which devices.
