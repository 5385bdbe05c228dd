//! Fault injection for tests (not part of the supported API).

use std::io;
use std::sync::Arc;

use crate::{CancelToken, Progress, Report, WarmupError, WarmupJob};

/// Called before every positioned write with (manifest path, offset, length); an error is
/// treated as the write's error (e.g. `io::Error::from_raw_os_error(28)` for ENOSPC).
pub type WriteHook = Arc<dyn Fn(&str, u64, usize) -> io::Result<()> + Send + Sync>;

/// Test hooks.
#[derive(Clone, Default)]
pub struct Hooks {
    /// See [`WriteHook`].
    pub before_write: Option<WriteHook>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("before_write", &self.before_write.is_some())
            .finish()
    }
}

/// [`crate::run`] with fault-injection hooks.
pub async fn run_with_hooks(
    job: WarmupJob,
    progress: Arc<Progress>,
    cancel: CancelToken,
    hooks: Hooks,
) -> Result<Report, WarmupError> {
    crate::run::run_with_hooks(job, progress, cancel, hooks).await
}
