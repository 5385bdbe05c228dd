//! JSON bodies that do not fail.

use bytes::Bytes;
use serde::Serialize;

/// Serializes `value` to JSON bytes. Our response types always serialize; should one not,
/// the failure is logged and the body is empty rather than the server panicking.
pub fn to_json<T: Serialize>(value: &T) -> Bytes {
    match serde_json::to_vec(value) {
        Ok(bytes) => Bytes::from(bytes),
        Err(err) => {
            tracing::error!(%err, "failed to serialize a response");
            Bytes::new()
        }
    }
}
