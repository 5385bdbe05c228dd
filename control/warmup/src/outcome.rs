//! How a transfer step ended: done (one chunk, or the whole file), or failed and why.

use crate::error::WarmupError;

/// Why a transfer step stopped.
#[derive(Debug)]
pub(crate) enum Fail {
    /// Worth retrying: connect error, 5xx, 408/429, reset, short read, stall.
    Transient { reason: String, connect: bool },
    /// Not worth retrying.
    Fatal(WarmupError),
    /// The job is stopping (cancelled, or another file failed).
    Stopped,
}

impl Fail {
    pub(crate) fn transient(reason: impl Into<String>) -> Self {
        Fail::Transient {
            reason: reason.into(),
            connect: false,
        }
    }
}

/// How a chunk fetch ended.
pub(crate) enum Done {
    /// The chunk asked for is written (and marked finished by the caller).
    Chunk,
    /// The server ignored `Range`; the worker streamed the whole file and marked every chunk it
    /// owned.
    Whole,
}
