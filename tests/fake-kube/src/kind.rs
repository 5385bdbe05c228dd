//! The resource kinds the fake serves.

/// A kind of object the fake serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    /// core/v1 Pod.
    Pod,
    /// inference.networking.k8s.io/v1 InferencePool.
    InferencePool,
    /// core/v1 ConfigMap.
    ConfigMap,
    /// coordination.k8s.io/v1 Lease.
    Lease,
    /// core/v1 Event.
    Event,
}

/// The API group of InferencePools.
pub(crate) const POOL_GROUP: &str = "inference.networking.k8s.io";
/// The API group of Leases.
pub(crate) const COORDINATION_GROUP: &str = "coordination.k8s.io";

/// Every kind, in the order discovery lists them.
const ALL: [Kind; 5] = [
    Kind::Pod,
    Kind::ConfigMap,
    Kind::Event,
    Kind::InferencePool,
    Kind::Lease,
];

impl Kind {
    /// The kind served at `/api/v1/...` (group `""`) or `/apis/{group}/v1/...` under `plural`.
    pub(crate) fn find(group: &str, plural: &str) -> Option<Kind> {
        ALL.into_iter()
            .find(|k| k.group() == group && k.plural() == plural)
    }

    /// Whether `group` is one the fake serves (`""` for core).
    pub(crate) fn serves_group(group: &str) -> bool {
        ALL.iter().any(|k| k.group() == group)
    }

    pub(crate) fn kind(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::InferencePool => "InferencePool",
            Kind::ConfigMap => "ConfigMap",
            Kind::Lease => "Lease",
            Kind::Event => "Event",
        }
    }

    pub(crate) fn api_version(self) -> &'static str {
        match self {
            Kind::Pod | Kind::ConfigMap | Kind::Event => "v1",
            Kind::InferencePool => "inference.networking.k8s.io/v1",
            Kind::Lease => "coordination.k8s.io/v1",
        }
    }

    pub(crate) fn plural(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::InferencePool => "inferencepools",
            Kind::ConfigMap => "configmaps",
            Kind::Lease => "leases",
            Kind::Event => "events",
        }
    }

    /// The group as a Status `details.group` names it (empty for core).
    pub(crate) fn group(self) -> &'static str {
        match self {
            Kind::Pod | Kind::ConfigMap | Kind::Event => "",
            Kind::InferencePool => POOL_GROUP,
            Kind::Lease => COORDINATION_GROUP,
        }
    }

    /// Clients may create, update and delete objects of this kind through the API.
    pub(crate) fn writable(self) -> bool {
        matches!(self, Kind::ConfigMap | Kind::Lease | Kind::Event)
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
            Kind::Event => &[
                "involvedObject.apiVersion",
                "involvedObject.fieldPath",
                "involvedObject.kind",
                "involvedObject.name",
                "involvedObject.namespace",
                "involvedObject.resourceVersion",
                "involvedObject.uid",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ],
            Kind::InferencePool | Kind::ConfigMap | Kind::Lease => &[],
        }
    }

    /// `configmaps "x"` or `leases.coordination.k8s.io "x"`, as Status messages name objects.
    pub(crate) fn resource(self) -> String {
        match self.group() {
            "" => self.plural().to_owned(),
            group => format!("{}.{group}", self.plural()),
        }
    }
}
