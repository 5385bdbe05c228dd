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
}

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
    gauge: Option<prometheus::IntGauge>,
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
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
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
            if let Some(g) = &gauge {
                g.inc();
            }
            let guard = ConnGuard(conns.clone(), gauge.clone());
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
                    None => serve(name, builder, stream, handler, limits, stop_rx).await,
                    Some(t) => {
                        let acceptor = t.acceptor();
                        match tokio::time::timeout(
                            limits.header_read_timeout,
                            acceptor.accept(stream),
                        )
                        .await
                        {
                            Ok(Ok(tls_stream)) => {
                                serve(name, builder, tls_stream, handler, limits, stop_rx).await
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
    let mut closing = *stop.borrow();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(listener = name, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = stop.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep(check), if !closing => {
                let idle = activity.in_flight.load(Ordering::Acquire) == 0
                    && activity.now_ms().saturating_sub(activity.idle_since_ms.load(Ordering::Acquire)) >= keepalive_ms;
                if idle {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
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
