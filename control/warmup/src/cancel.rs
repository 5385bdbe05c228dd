//! A cancellation signal for [`crate::run()`].

use std::sync::Arc;

use tokio::sync::watch;

/// A cloneable cancellation signal. Cancelling any clone cancels them all; it cannot be undone.
///
/// The control process cancels on SIGTERM (or `DELETE`/a newer job); [`crate::run()`] then stops
/// its transfers, keeps the finished chunks and returns [`crate::WarmupError::Cancelled`].
#[derive(Debug, Clone)]
pub struct CancelToken {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl CancelToken {
    /// A token that is not cancelled (pass it when the caller never cancels).
    pub fn new() -> Self {
        let (tx, _rx) = watch::channel(false);
        Self { tx: Arc::new(tx) }
    }

    /// Cancels every clone of this token.
    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the token has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once the token is cancelled.
    pub async fn cancelled(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives as long as `self`, so `wait_for` cannot fail while we wait.
        let _ = rx.wait_for(|cancelled| *cancelled).await;
    }
}
