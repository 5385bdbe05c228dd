//! Fault-injection hooks a job carries (empty outside tests; see [`crate::testing`]).

use std::io;
use std::sync::Arc;

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
