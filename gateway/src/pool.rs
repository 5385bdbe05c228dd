//! The data path's upstream connections: one HTTP/1.1 pool per endpoint, used straight from the
//! request's task.
//!
//! A request takes its endpoint's most recently returned idle connection (or opens one), sends
//! on it, and the response body gives the connection back once the response has passed through
//! whole ([`crate::body::ObservedBody`]). Against hyper-util's pooled client this leaves out,
//! per request, the pool lookup by scheme and authority (a SipHash and two lock rounds), the
//! absolute URI and its rewrite to origin form, the `Host` header formatted from the URI, the
//! connector cloned for a lazy connect that is then dropped, and the task spawned to wait for
//! the connection to be idle again.
//!
//! A connection whose response did not pass through whole (an upstream error, a timeout, a
//! client that went away, a retryable status that was retried) is closed, never reused. An idle
//! connection is closed after [`IDLE_TIMEOUT`] (checked whenever the pool is used), when the
//! upstream closes it, or when its endpoint leaves the configuration (the pool is dropped with
//! the last snapshot that has the endpoint).
//!
//! A request sent on an idle connection that the upstream closed in the meantime is not lost:
//! hyper hands back a request it did not write, and the next connection (or a new one) takes it.

use std::collections::VecDeque;
use std::error::Error as _;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt as _;
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use tower_service::Service;

use crate::tls::UpstreamConnector;

/// How long a connection may stay idle in the pool.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per endpoint; past it the oldest is closed.
pub const MAX_IDLE: usize = 1024;

type Sender = http1::SendRequest<Full<Bytes>>;

/// One endpoint's connections (one scheme, host and port).
pub struct EndpointPool {
    connector: UpstreamConnector,
    /// `scheme://authority`, what the connector connects to.
    target: Uri,
    /// Oldest first: requests take from the back, expired connections leave from the front.
    idle: Mutex<VecDeque<Idle>>,
}

struct Idle {
    tx: Sender,
    since: Instant,
}

/// A connection carrying one request; [`Conn::release`] gives it back once the response passed
/// through whole. Dropped without that, the connection closes.
pub struct Conn {
    tx: Sender,
    pool: Arc<EndpointPool>,
}

impl Conn {
    /// The response has passed through whole: the connection may carry the next request.
    pub fn release(self) {
        self.pool.put(self.tx, Instant::now());
    }
}

/// What the connector fails with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request got no response.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be opened (refused, timed out, TLS failed).
    Connect(BoxError),
    /// The connection failed before the response head arrived.
    Request(hyper::Error),
}

impl EndpointPool {
    /// A pool for `target` (`scheme://authority`), connecting with `connector`.
    pub fn new(connector: UpstreamConnector, target: Uri) -> Self {
        EndpointPool {
            connector,
            target,
            idle: Mutex::new(VecDeque::new()),
        }
    }

    /// Idle connections now (expired ones included until the pool is next used).
    pub fn idle_count(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Sends `req` (origin-form URI, `Host` set) on an idle connection or a new one and waits
    /// for the response head. The returned [`Conn`] goes back to the pool with
    /// [`Conn::release`].
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<Full<Bytes>>,
    ) -> Result<(Response<Incoming>, Conn), SendError> {
        while let Some(mut tx) = self.take() {
            // Idle connections are ready at once; one returned an instant ago may still be
            // finishing its last response, and one the upstream closed answers an error.
            if tx.ready().await.is_err() {
                continue;
            }
            match tx.try_send_request(req).await {
                Ok(resp) => return Ok((resp, self.conn(tx))),
                Err(mut e) => match e.take_message() {
                    // Not written: the connection closed under it. The next one takes it.
                    Some(r) => req = r,
                    None => return Err(SendError::Request(e.into_error())),
                },
            }
        }
        // Boxed: the connect future is large and rarely needed; inline, it would grow every
        // request's future (which hyper keeps allocated for the connection's life).
        let mut tx = Box::pin(self.connect()).await?;
        let resp = tx.send_request(req).await.map_err(SendError::Request)?;
        Ok((resp, self.conn(tx)))
    }

    fn conn(self: &Arc<Self>, tx: Sender) -> Conn {
        Conn {
            tx,
            pool: Arc::clone(self),
        }
    }

    /// The most recently returned idle connection that is not expired or closed.
    fn take(&self) -> Option<Sender> {
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        expire(&mut idle, now);
        while let Some(i) = idle.pop_back() {
            if !i.tx.is_closed() {
                return Some(i.tx);
            }
        }
        None
    }

    fn put(&self, tx: Sender, now: Instant) {
        if tx.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        expire(&mut idle, now);
        if idle.len() >= MAX_IDLE {
            idle.pop_front();
        }
        idle.push_back(Idle { tx, since: now });
    }

    /// Opens a connection and starts its task.
    async fn connect(&self) -> Result<Sender, SendError> {
        let mut connector = self.connector.clone();
        poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(SendError::Connect)?;
        let io = connector
            .call(self.target.clone())
            .await
            .map_err(SendError::Connect)?;
        let (tx, conn) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(SendError::Request)?;
        let target = self.target.clone();
        // A combinator, not an async block, which would hold the connection twice.
        tokio::spawn(conn.map(move |r| {
            if let Err(e) = r {
                let cause = e.source().map(ToString::to_string).unwrap_or_default();
                tracing::debug!(endpoint = %target, error = %e, cause, "upstream connection failed");
            }
        }));
        Ok(tx)
    }
}

/// Drops the connections idle for longer than [`IDLE_TIMEOUT`] (the oldest are at the front).
fn expire(idle: &mut VecDeque<Idle>, now: Instant) {
    while idle
        .front()
        .is_some_and(|i| now.saturating_duration_since(i.since) >= IDLE_TIMEOUT)
    {
        idle.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use hyper::service::service_fn;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    use super::*;

    /// A loopback upstream answering every request with "ok"; counts the connections it
    /// accepted. With `keep_alive` false it closes each connection after one response.
    async fn upstream(keep_alive: bool) -> (Uri, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let host = req.headers().get(http::header::HOST).cloned();
                    let mut resp = Response::new(Full::new(Bytes::from_static(b"ok")));
                    if let Some(h) = host {
                        resp.headers_mut().insert("x-host", h);
                    }
                    Ok::<_, Infallible>(resp)
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .keep_alive(keep_alive)
                        .serve_connection(TokioIo::new(stream), svc),
                );
            }
        });
        let target = format!("http://{addr}/").parse().unwrap();
        (target, accepted)
    }

    fn pool(target: Uri) -> Arc<EndpointPool> {
        let connector = crate::tls::upstream_connector(
            &infergate_config::UpstreamTls::default(),
            HttpConnector::new(),
        )
        .unwrap();
        Arc::new(EndpointPool::new(connector, target))
    }

    fn request(target: &Uri) -> Request<Full<Bytes>> {
        let host = target.authority().unwrap().as_str().to_owned();
        Request::builder()
            .uri("/v1/ok")
            .header(http::header::HOST, host)
            .body(Full::new(Bytes::new()))
            .unwrap()
    }

    /// Sends one request and reads its body whole; gives the connection back when `release`.
    async fn roundtrip(pool: &Arc<EndpointPool>, target: &Uri, release: bool) -> String {
        let (resp, conn) = pool.send(request(target)).await.unwrap();
        assert_eq!(
            resp.headers()["x-host"],
            target.authority().unwrap().as_str()
        );
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        if release {
            conn.release();
        }
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_released_connection_carries_the_next_requests() {
        let (target, accepted) = upstream(true).await;
        let pool = pool(target.clone());
        for _ in 0..5 {
            assert_eq!(roundtrip(&pool, &target, true).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(pool.idle_count(), 1);
    }

    #[tokio::test]
    async fn a_connection_not_released_is_not_reused() {
        let (target, accepted) = upstream(true).await;
        let pool = pool(target.clone());
        for _ in 0..3 {
            assert_eq!(roundtrip(&pool, &target, false).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
        assert_eq!(pool.idle_count(), 0);
    }

    #[tokio::test]
    async fn connections_the_upstream_closes_are_replaced_without_losing_requests() {
        let (target, accepted) = upstream(false).await;
        let pool = pool(target.clone());
        for _ in 0..5 {
            assert_eq!(roundtrip(&pool, &target, true).await, "ok");
            // Let the closed connection's task see the end.
            tokio::task::yield_now().await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_failure() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let target: Uri = format!("http://{addr}/").parse().unwrap();
        let pool = pool(target.clone());
        let Err(SendError::Connect(e)) = pool.send(request(&target)).await else {
            panic!("a closed port answered, or the error is not a connect error");
        };
        assert_eq!(e.to_string(), "tcp connect error");
        let io = e.source().and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(
            io.map(std::io::Error::kind),
            Some(std::io::ErrorKind::ConnectionRefused)
        );
    }
}
