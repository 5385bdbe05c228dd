//! The listener: starts the fake, serves each connection on its own task, refuses
//! connections while down, and writes a kubeconfig pointing at it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::handler;
use crate::shared::Shared;
use crate::stats::Stats;

/// How often open watches send BOOKMARK events unless
/// [`FakeKube::set_bookmark_interval`] says otherwise.
pub const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);

/// A running fake API server on `127.0.0.1`. Dropping it (or [`FakeKube::stop`]) stops the
/// listener and closes every connection, watch streams included.
pub struct FakeKube {
    pub(crate) shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FakeKube {
    /// Binds `127.0.0.1:0` and serves on a task of the current tokio runtime.
    pub async fn start() -> std::io::Result<FakeKube> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(addr, Some(DEFAULT_BOOKMARK_INTERVAL)));
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(FakeKube { shared, task })
    }

    /// The address bound.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// A kubeconfig with one cluster (`server:` [`FakeKube::url`]), one user without
    /// credentials and one context (namespace `default`), which is the current context.
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\npreferences: {{}}\nclusters:\n- name: fake-kube\n  cluster:\n    server: {}\n\
users:\n- name: fake-kube\n  user: {{}}\ncontexts:\n- name: fake-kube\n  context:\n    cluster: fake-kube\n    \
user: fake-kube\n    namespace: default\ncurrent-context: fake-kube\n",
            self.url()
        )
    }

    /// Writes [`FakeKube::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// Stops serving; the same as dropping the handle.
    pub fn stop(self) {}
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    let mut down = shared.down.subscribe();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                if *shared.down.borrow() {
                    Stats::bump(&shared.stats.refused);
                    drop(stream);
                    continue;
                }
                let shared = Arc::clone(&shared);
                conns.spawn(async move {
                    let svc = service_fn(move |req| handler::handle(Arc::clone(&shared), req));
                    let conn = auto::Builder::new(TokioExecutor::new());
                    // A client going away mid-request is routine for a test server.
                    let _ = conn.serve_connection(TokioIo::new(stream), svc).await;
                });
            }
            changed = down.changed() => {
                if changed.is_err() {
                    return;
                }
                if *down.borrow_and_update() {
                    conns.abort_all();
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}
