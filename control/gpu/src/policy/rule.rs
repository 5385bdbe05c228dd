//! Rules: what a finding or an XID means (a severity and an action).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::health::{Action, Severity};

/// A severity and an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub severity: Severity,
    pub action: Action,
}

impl Rule {
    pub const fn new(severity: Severity, action: Action) -> Self {
        Rule { severity, action }
    }
}

/// What an XID means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct XidRule {
    pub severity: Severity,
    pub action: Action,
    /// Escalation when the XID has been seen `count` times within `xid_window`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<XidRepeat>,
}

/// Escalation of an XID that recurs within the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct XidRepeat {
    /// Occurrences within `xid_window` (this one included) from which the escalation applies.
    pub count: u32,
    pub severity: Severity,
    pub action: Action,
}
