//! The listener: accepts connections and serves each on its own task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use super::config::SimConfig;
use super::service::SimState;

/// A running simulator. It serves HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on the
/// same port, until [`Simulator::shutdown`] or drop.
pub struct Simulator {
    addr: SocketAddr,
    state: Arc<SimState>,
    task: JoinHandle<()>,
}

impl Simulator {
    /// Binds `addr` (use `127.0.0.1:0` for an ephemeral port), spawns the server on the
    /// current tokio runtime and returns at once. Fails when binding fails,
    /// `cfg.served_version` is not a valid header value or `cfg.max_running` is `Some(0)`.
    /// The startup period ([`SimConfig::startup`]) starts now.
    pub async fn start(addr: SocketAddr, cfg: SimConfig) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(SimState::new(cfg, addr)?);
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&state)));
        Ok(Simulator { addr, state, task })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Count of requests received on the inference routes (`/v1/chat/completions`,
    /// `/v1/completions`, `/v1/embeddings`, and the other protocols' inference routes:
    /// `/v1/responses`, `/v1/audio/transcriptions`, `/v1/rerank`, `/v1/score`, KServe
    /// `infer`, WebUI `txt2img`/`img2img`, ComfyUI `/prompt`), counted on arrival whatever
    /// their outcome (including unknown models, malformed bodies, 429s and faults). `GET /metrics` serves
    /// the same count as `infergate_sim_requests_received_total`.
    pub fn requests_received(&self) -> u64 {
        self.state.requests_received()
    }

    /// Requests holding a running slot now (`vllm:num_requests_running`).
    pub fn running(&self) -> u64 {
        self.state.running()
    }

    /// Requests waiting for a running slot now (`vllm:num_requests_waiting`).
    pub fn waiting(&self) -> u64 {
        self.state.waiting()
    }

    /// The Prometheus text exposition served on `GET /metrics`.
    pub fn metrics_text(&self) -> String {
        self.state.metrics_text()
    }

    /// Streamed responses being generated now. A stream stops counting when it has sent
    /// `[DONE]`, or as soon as its client goes away (generation stops then too).
    pub fn active_streams(&self) -> u64 {
        self.state.active_streams()
    }

    /// Stops accepting and aborts every connection, streams included. Dropping the
    /// simulator does the same.
    pub fn shutdown(self) {}
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .field("requests_received", &self.requests_received())
            .field("active_streams", &self.active_streams())
            .field("running", &self.running())
            .field("waiting", &self.waiting())
            .finish_non_exhaustive()
    }
}

/// Accepts until aborted. Connection tasks live in a `JoinSet`, so aborting this task drops
/// the set and aborts them all.
async fn accept_loop(listener: TcpListener, state: Arc<SimState>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Events are small and latency-sensitive: no Nagle delay.
                    if let Err(err) = stream.set_nodelay(true) {
                        tracing::debug!(%err, %peer, "set_nodelay failed");
                    }
                    let builder = Arc::clone(&builder);
                    let state = Arc::clone(&state);
                    connections.spawn(async move {
                        let service = service_fn(|req| {
                            let state = Arc::clone(&state);
                            async move { state.handle(req).await }
                        });
                        if let Err(err) = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).await {
                            tracing::debug!(%err, %peer, "connection ended with an error");
                        }
                    });
                }
                Err(err) => {
                    // Usually transient (a reset before accept, or out of file descriptors):
                    // back off briefly instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
