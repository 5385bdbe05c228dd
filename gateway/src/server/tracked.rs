//! A connection's activity (requests in flight, idle since when) and the response body that
//! marks the end of its request.

use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Instant;

use crate::body::{BoxError, GatewayBody};

/// Requests in flight on one connection, and since when it has been idle.
pub(super) struct Activity {
    pub(super) in_flight: AtomicU32,
    pub(super) idle_since_ms: AtomicU64,
    pub(super) origin: Instant,
}

impl Activity {
    pub(super) fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Marks the end of a request on its connection when its response body is done or dropped.
pub(super) struct RequestDone(pub(super) Arc<Activity>);

impl Drop for RequestDone {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since_ms.store(a.now_ms(), Ordering::Release);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that holds its request's place on the connection.
pub struct Tracked {
    pub(super) inner: GatewayBody,
    pub(super) _done: RequestDone,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
