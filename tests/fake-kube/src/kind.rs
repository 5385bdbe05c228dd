//! The resource kinds the fake serves.

/// A kind of object the fake serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    /// core/v1 Pod.
    Pod,
    /// inference.networking.k8s.io/v1 InferencePool.
    InferencePool,
}

/// The API group of InferencePools.
pub(crate) const POOL_GROUP: &str = "inference.networking.k8s.io";

impl Kind {
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::InferencePool => "InferencePool",
        }
    }

    pub(crate) fn api_version(self) -> &'static str {
        match self {
            Kind::Pod => "v1",
            Kind::InferencePool => "inference.networking.k8s.io/v1",
        }
    }

    pub(crate) fn plural(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::InferencePool => "inferencepools",
        }
    }

    /// The group as a Status `details.group` names it (empty for core).
    pub(crate) fn group(self) -> &'static str {
        match self {
            Kind::Pod => "",
            Kind::InferencePool => POOL_GROUP,
        }
    }

    /// Custom resources carry `metadata.generation`, bumped on spec changes.
    pub(crate) fn has_generation(self) -> bool {
        self == Kind::InferencePool
    }

    /// Built-in types' list items omit `apiVersion`/`kind`; custom resources' keep them.
    pub(crate) fn list_items_typed(self) -> bool {
        self == Kind::InferencePool
    }

    /// Field selectors the real API server accepts for this kind, besides
    /// `metadata.name` and `metadata.namespace`.
    pub(crate) fn extra_fields(self) -> &'static [&'static str] {
        match self {
            Kind::Pod => &["spec.nodeName", "status.phase", "status.podIP"],
            Kind::InferencePool => &[],
        }
    }
}
