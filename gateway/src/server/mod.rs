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
//! `infergate_connections_closed_total{reason}` (the refusal module).
//!
//! Per request: its head arrives with a [`BodyDeadline`], `body_read_timeout` after the head
//! was read, by which the handler must have the whole body (docs/security.md, "Slow bodies").

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub mod dispatch;
mod limits;
mod refusal;
mod tracked;
pub mod upgrade;

pub use limits::{BodyDeadline, ConnLimits, Http2Conn};
use limits::{MAX_FRAME_SIZE, MAX_LOCAL_ERROR_RESET_STREAMS, MAX_SEND_BUF_SIZE};
use refusal::refusal;
pub use tracked::Tracked;
use tracked::{Activity, RequestDone};

use crate::body::GatewayBody;
use crate::error::{ErrorKind, ProxyError};
use crate::metrics::{ClosedConnections, ListenerMetrics};
use crate::tls::TlsTerminator;

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
            let guard = Arc::new(ConnGuard(
                conns.clone(),
                metrics.as_ref().map(|m| m.open.clone()),
            ));
            let closed = metrics.as_ref().map(|m| m.closed.clone());
            let builder = builder.clone();
            let handler = handler.clone();
            let tls = tls.clone();
            let stop_rx = stop_rx.clone();
            tokio::spawn(async move {
                let hold = ConnHold { _guard: guard };
                if over {
                    serve_rejecting(stream).await;
                    return;
                }
                match tls {
                    None => {
                        serve(
                            name, builder, stream, peer, handler, limits, stop_rx, closed, hold,
                        )
                        .await
                    }
                    Some(t) => {
                        let acceptor = t.acceptor();
                        match tokio::time::timeout(
                            limits.header_read_timeout,
                            acceptor.accept(stream),
                        )
                        .await
                        {
                            // Boxed: a TLS connection's state is larger, and inline it would
                            // grow every plain connection's task too.
                            Ok(Ok(tls_stream)) => {
                                Box::pin(serve(
                                    name, builder, tls_stream, peer, handler, limits, stop_rx,
                                    closed, hold,
                                ))
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

/// Keeps a connection counted as open (in `max_connections`, the open-connections gauge and the
/// drain's wait) while it is held. Every request carries one in its extensions, so that a
/// connection handed over by an HTTP/1.1 upgrade stays counted until its tunnel ends.
#[derive(Clone)]
pub struct ConnHold {
    _guard: Arc<ConnGuard>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Some(g) = &self.1 {
            g.dec();
        }
        self.0.count.fetch_sub(1, Ordering::AcqRel);
        self.0.closed.notify_waiters();
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve<I, F, Fut>(
    name: &'static str,
    builder: auto::Builder<TokioExecutor>,
    io: I,
    peer: std::net::SocketAddr,
    handler: F,
    limits: ConnLimits,
    mut stop: watch::Receiver<bool>,
    closed: Option<ClosedConnections>,
    hold: ConnHold,
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
        req.extensions_mut().insert(hold.clone());
        req.extensions_mut()
            .insert(crate::accesslog::ClientAddr(peer));
        act.in_flight.fetch_add(1, Ordering::AcqRel);
        let done = RequestDone(act.clone());
        // A combinator, not an async block: an async block would hold the handler's future
        // twice (captured and awaited), and hyper keeps it allocated for the connection's life.
        handler(req).map(move |r| {
            r.map(|resp| {
                resp.map(|b| Tracked {
                    inner: b,
                    _done: done,
                })
            })
        })
    });
    // With upgrades: a WebSocket upgrade's connection is handed to its tunnel (`upgrade`).
    let mut conn = pin!(builder.serve_connection_with_upgrades(TokioIo::new(io), svc));
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
