//! Progressive canary releases: the release spec, metrics sources (the gateways' `/metrics` or
//! Prometheus), the gates, the step engine, its persisted state and the report.

pub mod engine;
pub mod metrics;
pub mod record;
pub mod report;
pub mod spec;
pub mod store;
