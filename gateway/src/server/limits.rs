//! The limits of a listener's connections, as the accept loop applies them.

use std::time::Duration;

use tokio::time::Instant;

/// Connection-level settings of a listener.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub max_connections: u32,
    pub http2: Http2Conn,
}

/// The tunable limits of an HTTP/2 connection (`limits.http2`).
#[derive(Clone, Copy, Debug)]
pub struct Http2Conn {
    pub max_concurrent_streams: u32,
    pub max_pending_accept_reset_streams: usize,
    pub initial_stream_window: u32,
    pub initial_connection_window: u32,
    pub keepalive_ping_interval: Option<Duration>,
    pub keepalive_ping_timeout: Duration,
}

/// Largest frame payload the gateway accepts: the spec's minimum (RFC 9113, 4.2), hyper's
/// default. Request heads and bodies are small, so larger frames gain nothing, and a client
/// then holds at most 16 KiB of a frame in the gateway's read buffer.
pub(super) const MAX_FRAME_SIZE: u32 = 16 * 1024;
/// Streams the gateway itself resets for a client's protocol error before it closes the
/// connection with GOAWAY `ENHANCE_YOUR_CALM` (RUSTSEC-2024-0003); hyper's default.
pub(super) const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;
/// Response bytes buffered per stream ahead of the client's flow-control window; hyper's
/// default. With `max_concurrent_streams` it bounds what one slow reader holds in memory.
pub(super) const MAX_SEND_BUF_SIZE: usize = 400 * 1024;

/// When a request's body must have arrived whole: `body_read_timeout` after its head was read.
/// Every request the listener hands to its handler carries one in its extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyDeadline(pub Instant);

impl ConnLimits {
    pub fn from_config(l: &infergate_config::Limits) -> Self {
        ConnLimits {
            max_header_bytes: usize::try_from(l.max_header_bytes.get()).unwrap_or(usize::MAX),
            max_headers: l.max_headers as usize,
            header_read_timeout: l.header_read_timeout.get(),
            body_read_timeout: l.body_read_timeout.get(),
            keepalive_timeout: l.keepalive_timeout.get(),
            max_connections: l.max_connections,
            http2: Http2Conn::from_config(&l.http2),
        }
    }
}

impl Http2Conn {
    fn from_config(h: &infergate_config::Http2Limits) -> Self {
        let window = |b: infergate_config::ByteSize| u32::try_from(b.get()).unwrap_or(u32::MAX);
        Http2Conn {
            max_concurrent_streams: h.max_concurrent_streams,
            max_pending_accept_reset_streams: h.max_pending_accept_reset_streams as usize,
            initial_stream_window: window(h.initial_stream_window),
            initial_connection_window: window(h.initial_connection_window),
            keepalive_ping_interval: h.keepalive_ping_interval.map(|d| d.get()),
            keepalive_ping_timeout: h.keepalive_ping_timeout.get(),
        }
    }
}
