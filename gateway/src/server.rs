//! Accept loops: HTTP/1.1 and HTTP/2 (h2c, or ALPN over TLS) on the same port, with the limits
//! of `limits` applied per listener and graceful shutdown.
//!
//! Per connection: the TLS handshake (when configured) must finish within the header read
//! timeout; an HTTP/1.1 connection must deliver each request head within `header_read_timeout`
//! of becoming ready for it (hyper's timer, which also bounds how long an HTTP/1.1 connection
//! may sit idle between requests); any connection with no request in flight for
//! `keepalive_timeout` is closed gracefully. Past `max_connections`, a new connection is
//! answered 503 (OpenAI error body, `Retry-After`) and closed.
//!
//! HTTP/2: the limits of [`Http2Conn`] and the fixed ones below (docs/security.md, "HTTP/2").
//! A connection that hyper ends for breaking a limit, or that does not close within
//! `header_read_timeout` of being asked to while nothing is in flight, is counted in
//! `infergate_connections_closed_total{reason}` ([`refusal`]).
//!
//! Per request: its head arrives with a [`BodyDeadline`], `body_read_timeout` after the head
//! was read, by which the handler must have the whole body (docs/security.md, "Slow bodies").

use std::convert::Infallible;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::body::{BoxError, GatewayBody};
use crate::error::{ErrorKind, ProxyError};
use crate::metrics::{ClosedConnections, ListenerMetrics};
use crate::tls::TlsTerminator;

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
const MAX_FRAME_SIZE: u32 = 16 * 1024;
/// Streams the gateway itself resets for a client's protocol error before it closes the
/// connection with GOAWAY `ENHANCE_YOUR_CALM` (RUSTSEC-2024-0003); hyper's default.
const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;
/// Response bytes buffered per stream ahead of the client's flow-control window; hyper's
/// default. With `max_concurrent_streams` it bounds what one slow reader holds in memory.
const MAX_SEND_BUF_SIZE: usize = 400 * 1024;

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

/// A running listener. [`Server::shutdown`] stops accepting and closes connections gracefully.
pub struct Server {
    name: &'static str,
    stop: watch::Sender<bool>,
    open: Arc<OpenConns>,
    accept: std::sync::Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct OpenConns {
    count: AtomicU32,
    closed: Notify,
}

impl Server {
    /// Stops accepting, asks every connection to finish gracefully (HTTP/1.1: close after the
    /// response in flight; HTTP/2: GOAWAY), and waits until all are closed.
    pub async fn shutdown(&self) {
        self.stop_accepting().await;
        let _ = self.stop.send(true);
        loop {
            let closed = self.open.closed.notified();
            let n = self.open.count.load(Ordering::Acquire);
            if n == 0 {
                break;
            }
            tracing::debug!(
                listener = self.name,
                open = n,
                "waiting for connections to close"
            );
            closed.await;
        }
    }

    /// Closes the listening socket: from when this returns, new connections are refused.
    pub async fn stop_accepting(&self) {
        let task = self
            .accept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = task {
            t.abort();
            let _ = t.await;
        }
    }

    pub fn open_connections(&self) -> u32 {
        self.open.count.load(Ordering::Acquire)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self
            .accept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            t.abort();
        }
    }
}

/// Serves connections from `listener` with `handler`.
pub fn spawn<F, Fut>(
    name: &'static str,
    listener: TcpListener,
    limits: ConnLimits,
    tls: Option<Arc<TlsTerminator>>,
    metrics: Option<ListenerMetrics>,
    handler: F,
) -> Server
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<GatewayBody>, Infallible>> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers);
    let h2 = limits.http2;
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(h2.max_concurrent_streams)
        .max_pending_accept_reset_streams(h2.max_pending_accept_reset_streams)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESET_STREAMS)
        .initial_stream_window_size(h2.initial_stream_window)
        .initial_connection_window_size(h2.initial_connection_window)
        // Fixed windows: the adaptive (BDP) window would grow each stream's window up to
        // 16 MiB, buffering what the client sends; request bodies here are small.
        .adaptive_window(false)
        .max_frame_size(MAX_FRAME_SIZE)
        .max_send_buf_size(MAX_SEND_BUF_SIZE)
        .keep_alive_interval(h2.keepalive_ping_interval)
        .keep_alive_timeout(h2.keepalive_ping_timeout);
    let (stop, stop_rx) = watch::channel(false);
    let open = Arc::new(OpenConns::default());
    let conns = open.clone();
    let mut accept_stop = stop_rx.clone();
    let accept = tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and similar: back off instead of spinning.
                        tracing::warn!(listener = name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = accept_stop.changed() => break,
            };
            let _ = stream.set_nodelay(true);
            let over = conns.count.fetch_add(1, Ordering::AcqRel) >= limits.max_connections;
            if let Some(m) = &metrics {
                m.open.inc();
            }
            let guard = ConnGuard(conns.clone(), metrics.as_ref().map(|m| m.open.clone()));
            let closed = metrics.as_ref().map(|m| m.closed.clone());
            let builder = builder.clone();
            let handler = handler.clone();
            let tls = tls.clone();
            let stop_rx = stop_rx.clone();
            tokio::spawn(async move {
                let _guard = guard;
                if over {
                    serve_rejecting(stream).await;
                    return;
                }
                match tls {
                    None => serve(name, builder, stream, handler, limits, stop_rx, closed).await,
                    Some(t) => {
                        let acceptor = t.acceptor();
                        match tokio::time::timeout(
                            limits.header_read_timeout,
                            acceptor.accept(stream),
                        )
                        .await
                        {
                            Ok(Ok(tls_stream)) => {
                                serve(name, builder, tls_stream, handler, limits, stop_rx, closed)
                                    .await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(listener = name, %peer, error = %e, "TLS handshake failed")
                            }
                            Err(_) => {
                                tracing::debug!(listener = name, %peer, "TLS handshake timed out")
                            }
                        }
                    }
                }
            });
        }
    });
    Server {
        name,
        stop,
        open,
        accept: std::sync::Mutex::new(Some(accept)),
    }
}

struct ConnGuard(Arc<OpenConns>, Option<prometheus::IntGauge>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Some(g) = &self.1 {
            g.dec();
        }
        self.0.count.fetch_sub(1, Ordering::AcqRel);
        self.0.closed.notify_waiters();
    }
}

/// Requests in flight on one connection, and since when it has been idle.
struct Activity {
    in_flight: AtomicU32,
    idle_since_ms: AtomicU64,
    origin: Instant,
}

impl Activity {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

async fn serve<I, F, Fut>(
    name: &'static str,
    builder: auto::Builder<TokioExecutor>,
    io: I,
    handler: F,
    limits: ConnLimits,
    mut stop: watch::Receiver<bool>,
    closed: Option<ClosedConnections>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<GatewayBody>, Infallible>> + Send + 'static,
{
    let activity = Arc::new(Activity {
        in_flight: AtomicU32::new(0),
        idle_since_ms: AtomicU64::new(0),
        origin: Instant::now(),
    });
    let act = activity.clone();
    let svc = service_fn(move |mut req: Request<Incoming>| {
        let deadline = BodyDeadline(Instant::now() + limits.body_read_timeout);
        req.extensions_mut().insert(deadline);
        act.in_flight.fetch_add(1, Ordering::AcqRel);
        let done = RequestDone(act.clone());
        let fut = handler(req);
        async move {
            let resp = fut.await?;
            Ok::<_, Infallible>(resp.map(|b| Tracked {
                inner: b,
                _done: done,
            }))
        }
    });
    let mut conn = pin!(builder.serve_connection(TokioIo::new(io), svc));
    let check =
        (limits.keepalive_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let keepalive_ms = u64::try_from(limits.keepalive_timeout.as_millis()).unwrap_or(u64::MAX);
    let count = |reason: &str| {
        if let Some(c) = &closed {
            c.inc(reason);
        }
    };
    // When the connection was asked to close (HTTP/2: GOAWAY sent).
    let mut closing: Option<Instant> = None;
    if *stop.borrow() {
        closing = Some(Instant::now());
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(listener = name, error = %e, "connection ended with an error");
                    if let Some(reason) = refusal(&*e) {
                        count(reason);
                    }
                }
                break;
            }
            _ = stop.changed(), if closing.is_none() => {
                closing = Some(Instant::now());
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep(check) => {
                let quiet = activity.in_flight.load(Ordering::Acquire) == 0;
                match closing {
                    None => {
                        let idle_ms = activity.now_ms().saturating_sub(activity.idle_since_ms.load(Ordering::Acquire));
                        if quiet && idle_ms >= keepalive_ms {
                            closing = Some(Instant::now());
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                    // A client that reads nothing (say, one flooding SETTINGS frames without
                    // reading their ACKs) never takes the GOAWAY: drop the connection.
                    Some(since) if quiet && since.elapsed() >= limits.header_read_timeout => {
                        tracing::debug!(listener = name, "connection did not close when asked; dropped");
                        count("close_timeout");
                        break;
                    }
                    Some(_) => {}
                }
            }
        }
    }
}

/// Why hyper ended a connection, when it was for breaking a limit (the value of `reason` in
/// `infergate_connections_closed_total`); `None` for an ordinary end or an I/O error.
///
/// When h2 closes a connection itself it returns the code of the GOAWAY it sent, but not its
/// debug data (`too_many_resets`, `too_many_continuations`, ...), so all its refusals of
/// abusive load share `ENHANCE_YOUR_CALM`. The code is read from the error's debug text (the
/// gateway does not name h2's error type); `gateway/tests/http2_abuse.rs` checks it.
fn refusal(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let e = e.downcast_ref::<hyper::Error>()?;
    let source = std::error::Error::source(e).map(|s| format!("{s:?}"));
    let text = source.as_deref().unwrap_or_default();
    if e.is_timeout() {
        return Some(if text.contains("KeepAliveTimedOut") {
            "ping_timeout"
        } else {
            "header_timeout"
        });
    }
    // h2's error for a GOAWAY it sent: `Error { kind: GoAway(b"", REASON, Library) }`.
    if !(text.contains("GoAway(") && text.contains("Library)")) {
        return None;
    }
    Some(
        [
            ("ENHANCE_YOUR_CALM", "enhance_your_calm"),
            ("FRAME_SIZE_ERROR", "frame_size_error"),
            ("FLOW_CONTROL_ERROR", "flow_control_error"),
            ("COMPRESSION_ERROR", "compression_error"),
        ]
        .into_iter()
        .find(|(code, _)| text.contains(code))
        .map_or("protocol_error", |(_, reason)| reason),
    )
}

/// Marks the end of a request on its connection when its response body is done or dropped.
struct RequestDone(Arc<Activity>);

impl Drop for RequestDone {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since_ms.store(a.now_ms(), Ordering::Release);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that holds its request's place on the connection.
pub struct Tracked {
    inner: GatewayBody,
    _done: RequestDone,
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

/// Answers every request on a connection over the limit with 503 and closes it.
async fn serve_rejecting(stream: tokio::net::TcpStream) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(false)
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(5));
    let svc = service_fn(|_req: Request<Incoming>| async {
        Ok::<_, Infallible>(
            ProxyError::new(
                ErrorKind::Overloaded,
                "the gateway has too many open connections; retry shortly",
            )
            .into_response(),
        )
    });
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
}
