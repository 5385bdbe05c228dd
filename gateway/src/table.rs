//! The routing table: an immutable snapshot published by the writer ([`crate::writer`]).
//! A request loads it once (`Gateway::snapshot`) and keeps that `Arc` for its whole life:
//! admission, limits, route, retry budget and shadow all come from the one load.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderName;

use crate::backend::BackendRt;
use crate::retry::RetryBudget;
use crate::route::{LabelSources, ModelRoute};

/// The compiled routing table.
#[derive(Clone)]
pub struct Table {
    pub(crate) models: HashMap<Box<str>, Arc<ModelRoute>>,
    /// `GET /v1/models`, rendered once.
    pub models_json: Bytes,
    pub limits: Limits,
    pub retry_budget: Arc<RetryBudget>,
    /// Bearer token for `/admin/*`, resolved from `token` or `token_env`.
    pub admin_token: Option<Box<str>>,
    /// `request_labels`, in order.
    pub labels: Arc<LabelSources>,
    pub pin_header: HeaderName,
    /// `path_routes`: models named by path prefixes and the ComfyUI route.
    pub path_routes: Arc<crate::protocols::paths::PathRoutes>,
    /// `admission`: priority queues and rate limits, with their state.
    pub admission: Arc<crate::admission::Admission>,
    pub(crate) backends: Vec<Arc<BackendRt>>,
}

/// Limits of the data listener, as the data path uses them.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_body_bytes: u64,
    pub max_in_flight: u32,
}

impl Table {
    pub fn route(&self, model: &str) -> Option<&Arc<ModelRoute>> {
        self.models.get(model)
    }

    /// Every model's route.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<ModelRoute>> {
        self.models.values()
    }

    pub fn backends(&self) -> &[Arc<BackendRt>] {
        &self.backends
    }

    /// The backend named `name`.
    pub fn backend(&self, name: &str) -> Option<&Arc<BackendRt>> {
        self.backends.iter().find(|b| b.name.as_ref() == name)
    }
}
