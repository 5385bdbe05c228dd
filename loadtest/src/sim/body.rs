//! The response body type: a complete buffer, an SSE token stream produced on schedule, or
//! (for the `hang-body` fault) a body that never sends anything.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::stream::TokenStream;

/// Body of every simulator response.
///
/// A streamed body yields each SSE event as its own frame at the moment the event is due, so
/// the client sees the simulated timing. Generation lives in the body itself: when the client
/// goes away, hyper drops the body and generation stops with it. A stream dropped by a fault
/// fails with an error, which makes hyper abort the connection.
pub struct SimBody {
    inner: Inner,
}

/// A body's events produced as they fall due (see [`SimBody::events`]).
pub trait EventSource: Send {
    /// The next event when due; `None` at the end; an error aborts the connection.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<std::io::Result<Bytes>>>;

    /// Whether no event is left.
    fn is_finished(&self) -> bool;
}

enum Inner {
    Full(Option<Bytes>),
    Stream(Box<TokenStream>),
    Events(Box<dyn EventSource>),
    Never,
}

impl SimBody {
    /// A body sent in one frame (none when `bytes` is empty).
    pub fn full(bytes: Bytes) -> Self {
        let bytes = if bytes.is_empty() { None } else { Some(bytes) };
        Self {
            inner: Inner::Full(bytes),
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self::full(Bytes::new())
    }

    /// A body that never yields a frame nor ends.
    pub fn never() -> Self {
        Self {
            inner: Inner::Never,
        }
    }

    /// A body that yields the events of `source` as they fall due.
    pub fn events(source: Box<dyn EventSource>) -> Self {
        Self {
            inner: Inner::Events(source),
        }
    }

    /// A body that yields the events of `stream` as they fall due.
    pub fn stream(stream: TokenStream) -> Self {
        Self {
            inner: Inner::Stream(Box::new(stream)),
        }
    }
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match &mut self.get_mut().inner {
            Inner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Stream(stream) => stream
                .poll_event(cx)
                .map(|event| event.map(|b| b.map(Frame::data))),
            Inner::Events(source) => source
                .poll_event(cx)
                .map(|event| event.map(|b| b.map(Frame::data))),
            Inner::Never => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(bytes) => bytes.is_none(),
            Inner::Stream(stream) => stream.is_finished(),
            Inner::Events(source) => source.is_finished(),
            Inner::Never => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Inner::Stream(_) | Inner::Events(_) | Inner::Never => SizeHint::default(),
        }
    }
}
