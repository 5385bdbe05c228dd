//! [`Verdicts`]: a summary of one set of verdicts, and the taint value it gives.

use infergate_gpu::health::{Action, Severity};

use crate::types::{join_gpus, Cause, GpuVerdict};

/// A summary of one set of verdicts.
pub(super) struct Verdicts {
    pub(super) unhealthy: Vec<u32>,
    pub(super) action: Action,
    pub(super) cause: Cause,
    pub(super) message: String,
}

impl Verdicts {
    pub(super) fn new(verdicts: &[GpuVerdict]) -> Self {
        let mut unhealthy = Vec::new();
        let mut gpus = Vec::new();
        let mut action = Action::None;
        let mut codes: Vec<String> = Vec::new();
        let mut reasons = Vec::new();
        let mut messages = Vec::new();
        for v in verdicts {
            let bad = v.severity == Severity::Unhealthy;
            if bad {
                unhealthy.push(v.gpu);
            }
            if bad || v.action > Action::None {
                gpus.push(v.gpu);
                action = action.max(v.action);
                for c in &v.codes {
                    if !codes.contains(c) {
                        codes.push(c.clone());
                    }
                }
                reasons.extend(v.reasons.iter().map(|r| format!("GPU {}: {r}", v.gpu)));
                if bad {
                    messages.push(format!("GPU {}: {}", v.gpu, v.reasons.join("; ")));
                }
            }
        }
        unhealthy.sort_unstable();
        unhealthy.dedup();
        gpus.sort_unstable();
        gpus.dedup();
        let message = if unhealthy.is_empty() {
            "all GPUs healthy".to_owned()
        } else {
            messages.join("; ")
        };
        Verdicts {
            unhealthy,
            action,
            cause: Cause {
                gpus,
                code: codes.join(","),
                reason: reasons.join("; "),
            },
            message,
        }
    }

    pub(super) fn recovered(&self) -> bool {
        self.unhealthy.is_empty() && self.action == Action::None
    }
}

/// The taint value: GPU indices joined by `-` (a label value: at most 63 characters).
pub(super) fn taint_value(gpus: &[u32]) -> String {
    let value = join_gpus(gpus, "-");
    if value.len() > 63 {
        "many".into()
    } else {
        value
    }
}
