//! `admission`: priority classes with bounded queues, and token rate limits per tenant
//! (docs/admission.md). Both are off unless configured.

use std::collections::{BTreeMap, HashSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::units::Dur;

/// What happens to a request before it is sent to an endpoint.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Admission {
    /// Priority classes: when every endpoint of the chosen variant is saturated, a request
    /// waits in its class's bounded queue instead of being refused. Default: none (refused
    /// with 503 as without admission).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Token and request rate limits per tenant, counted by this gateway replica. Default:
    /// none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RateLimits>,
}

/// Priority classes, highest first.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Priority {
    /// The request header that names the class. Exactly one of `header` or `label`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// A label of `request_labels` whose value names the class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The classes, highest priority first: a place that frees goes to the oldest request of
    /// the highest class that waits, and lower classes are shed first.
    pub classes: Vec<PriorityClass>,
    /// The class of a request that names none, or names one not in `classes`.
    pub default: String,
    /// Most requests queued per backend across all classes. When the queues hold this many,
    /// an arriving request sheds the newest request of a lower class, or is shed itself when
    /// there is none. Default: the sum of the classes' `queue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queued: Option<u32>,
}

/// One priority class.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PriorityClass {
    /// The value of the header or label that selects the class.
    pub name: String,
    /// Most requests of this class waiting per backend; one more is answered 429. 0: never
    /// queue, answer 429 at once. Default `100`.
    #[serde(default = "default_queue")]
    pub queue: u32,
    /// Longest wait in the queue; past it the request is answered 429. Default `5s`.
    #[serde(default = "default_max_wait")]
    pub max_wait: Dur,
}

fn default_queue() -> u32 {
    100
}

fn default_max_wait() -> Dur {
    Dur::secs(5)
}

/// Rate limits per tenant.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Where the tenant comes from: `{header: NAME}` or `{label: NAME}` (a label of
    /// `request_labels`). Requests without it are one tenant, `""`.
    pub key: RateKey,
    /// The limits of a tenant not listed in `tenants`. Default: no limit.
    #[serde(default)]
    pub default: Limit,
    /// Limits by tenant name.
    #[serde(default)]
    pub tenants: BTreeMap<String, Limit>,
    /// Each limit is divided by this, for N gateway replicas that share the traffic evenly.
    /// Default `1`.
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    /// Output tokens assumed for a request without `max_tokens` or `max_completion_tokens`,
    /// until its real usage is known. Default `256`.
    #[serde(default = "default_output_tokens")]
    pub default_max_tokens: u32,
    /// Most tenants tracked at once; idle ones are forgotten first. Default `10000`.
    #[serde(default = "default_max_tenants")]
    pub max_tenants: u32,
}

fn default_replicas() -> u32 {
    1
}

fn default_output_tokens() -> u32 {
    256
}

fn default_max_tenants() -> u32 {
    10_000
}

/// Where a rate-limit key comes from. Exactly one of `header` or `label`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A tenant's limits. An absent limit does not apply.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limit {
    /// Prompt plus completion tokens per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    /// Requests per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
}

/// Checks the `admission` section; `labels` are the names of `request_labels`, sorted. Called
/// by [`crate::validate`].
pub(crate) fn check(a: &Admission, labels: &[&str], push: &mut impl FnMut(String, String)) {
    if let Some(p) = &a.priority {
        check_priority(labels, p, push);
    }
    if let Some(r) = &a.rate_limits {
        check_source(
            labels,
            "admission.rate_limits.key",
            &r.key.header,
            &r.key.label,
            push,
        );
        check_limit("admission.rate_limits.default", &r.default, push);
        for (name, l) in &r.tenants {
            check_limit(&format!("admission.rate_limits.tenants.{name}"), l, push);
        }
        for (field, v) in [
            ("replicas", r.replicas),
            ("default_max_tokens", r.default_max_tokens),
            ("max_tenants", r.max_tenants),
        ] {
            if v == 0 {
                push(
                    format!("admission.rate_limits.{field}"),
                    "must be greater than 0".into(),
                );
            }
        }
    }
}

fn check_priority(labels: &[&str], p: &Priority, push: &mut impl FnMut(String, String)) {
    check_source(labels, "admission.priority", &p.header, &p.label, push);
    if p.classes.is_empty() {
        push(
            "admission.priority.classes".into(),
            "at least one class is required".into(),
        );
    }
    let mut names = HashSet::new();
    for (i, c) in p.classes.iter().enumerate() {
        let path = format!("admission.priority.classes[{i}]");
        if c.name.is_empty() {
            push(format!("{path}.name"), "must not be empty".into());
        } else if !names.insert(c.name.as_str()) {
            push(
                format!("{path}.name"),
                format!("duplicate class name {:?}", c.name),
            );
        }
        if c.max_wait.get().is_zero() {
            push(format!("{path}.max_wait"), "must be greater than 0".into());
        }
    }
    if !p.classes.is_empty() && !names.contains(p.default.as_str()) {
        let known: Vec<&str> = p.classes.iter().map(|c| c.name.as_str()).collect();
        push(
            "admission.priority.default".into(),
            format!(
                "unknown class {:?} (known: {})",
                p.default,
                known.join(", ")
            ),
        );
    }
    if p.max_queued == Some(0) {
        push(
            "admission.priority.max_queued".into(),
            "must be greater than 0 (set every class's queue to 0 to never queue)".into(),
        );
    }
}

/// Exactly one of a header (a valid name) or a label of `request_labels`.
fn check_source(
    labels: &[&str],
    path: &str,
    header: &Option<String>,
    label: &Option<String>,
    push: &mut impl FnMut(String, String),
) {
    match (header, label) {
        (Some(h), None) => {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                push(
                    format!("{path}.header"),
                    format!("{h:?} is not a header name"),
                );
            }
        }
        (None, Some(l)) => {
            if !labels.contains(&l.as_str()) {
                let known = labels;
                push(
                    format!("{path}.label"),
                    format!(
                        "unknown label {l:?}: define it in request_labels (known: {})",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
            }
        }
        _ => push(path.to_owned(), "set exactly one of header or label".into()),
    }
}

fn check_limit(path: &str, l: &Limit, push: &mut impl FnMut(String, String)) {
    for (field, v) in [
        ("tokens_per_minute", l.tokens_per_minute),
        ("requests_per_minute", l.requests_per_minute),
    ] {
        if v == Some(0) {
            push(
                format!("{path}.{field}"),
                "must be greater than 0 (leave it out for no limit)".into(),
            );
        }
    }
}
