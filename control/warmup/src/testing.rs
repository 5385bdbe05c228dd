//! Fault injection for tests (not part of the supported API).

use std::sync::Arc;

use crate::cancel::CancelToken;
use crate::error::WarmupError;
use crate::job::WarmupJob;
use crate::progress::Progress;
use crate::run::Report;

pub use crate::hooks::{Hooks, WriteHook};

/// [`crate::run()`] with fault-injection hooks.
pub async fn run_with_hooks(
    job: WarmupJob,
    progress: Arc<Progress>,
    cancel: CancelToken,
    hooks: Hooks,
) -> Result<Report, WarmupError> {
    crate::run::run_with_hooks(job, progress, cancel, hooks).await
}
