//! Recording what an action did: the outcome, and an event on the node.

use super::Remediator;
use crate::actions::ActionError;
use crate::outcome::Outcome;
use crate::types::{EventKind, NodeEvent};

impl Remediator {
    /// Counts an action's result; an error goes to the outcome, the log and an event.
    pub(super) fn done<T>(
        &self,
        what: &str,
        result: Result<T, ActionError>,
        out: &mut Outcome,
    ) -> Option<T> {
        self.metrics.action(result.is_ok());
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                tracing::warn!(node = %self.node, "{what} failed: {e}");
                out.errors.push(format!("{what}: {e}"));
                None
            }
        }
    }

    pub(super) async fn event(&self, kind: EventKind, reason: &str, action: &str, message: String) {
        let event = NodeEvent {
            kind,
            reason: reason.into(),
            action: action.into(),
            message,
        };
        if let Err(e) = self.actions.record_event(&event).await {
            tracing::warn!(node = %self.node, reason, "record event failed: {e}");
        }
    }
}
