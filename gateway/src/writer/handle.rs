//! The sending side of the writer: what can be asked of it, each message stamped with the time
//! it was sent.

use infergate_config::{ConfigError, ConfigErrors};
use infergate_wire::feed::FeedDoc;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::compile::Rebuilt;
use crate::status::Trigger;

pub(super) type Reply<T> = Option<oneshot::Sender<Result<T, ConfigErrors>>>;

/// A message and the time it was sent.
pub(super) struct Msg {
    pub at: Instant,
    pub what: Input,
}

fn msg(what: Input) -> Msg {
    Msg {
        at: Instant::now(),
        what,
    }
}

pub(super) enum Input {
    /// Read the config file again and apply it.
    Reload {
        trigger: Trigger,
        reply: Reply<u64>,
    },
    /// Apply this config text.
    Apply {
        text: String,
        trigger: Trigger,
        reply: Reply<u64>,
    },
    Feed {
        url: String,
        doc: Box<FeedDoc>,
    },
    FeedStale {
        url: String,
    },
    Endpoints {
        backend: String,
        endpoints: Vec<infergate_config::Endpoint>,
        reply: Reply<Rebuilt>,
    },
}

/// Sends inputs to the writer.
#[derive(Clone)]
pub struct WriterHandle {
    pub(super) tx: mpsc::Sender<Msg>,
    pub(super) has_file: bool,
}

pub(super) fn gone() -> ConfigErrors {
    one_error(String::new(), "the gateway's writer has stopped".into())
}

pub(super) fn one_error(path: String, reason: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigError { path, reason }])
}

impl WriterHandle {
    /// Whether the gateway was started from a config file (that a reload reads).
    pub fn has_file(&self) -> bool {
        self.has_file
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Input) -> Result<T, ConfigErrors> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(msg(make(Some(tx))))
            .await
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Reloads the config file and waits for the result: the new config version.
    pub async fn reload(&self, trigger: Trigger) -> Result<u64, ConfigErrors> {
        self.ask(|reply| Input::Reload { trigger, reply }).await
    }

    /// Asks for a reload of the config file without waiting (dropped when the queue is full:
    /// a reload is already coming).
    pub fn trigger(&self, trigger: Trigger) {
        let _ = self.tx.try_send(msg(Input::Reload {
            trigger,
            reply: None,
        }));
    }

    /// Applies a config text and waits for the result.
    pub async fn apply(&self, text: String, trigger: Trigger) -> Result<u64, ConfigErrors> {
        self.ask(|reply| Input::Apply {
            text,
            trigger,
            reply,
        })
        .await
    }

    /// Replaces the endpoints of one backend, rebuilding only what depends on it. Endpoints
    /// that stay keep their state. A later config reload applies the file's list again, except
    /// to a backend with `discovery`, which keeps the last set given here.
    pub async fn apply_endpoints(
        &self,
        backend: &str,
        endpoints: Vec<infergate_config::Endpoint>,
    ) -> Result<Rebuilt, ConfigErrors> {
        self.ask(|reply| Input::Endpoints {
            backend: backend.to_owned(),
            endpoints,
            reply,
        })
        .await
    }

    /// A feed's new document.
    pub async fn feed(&self, url: &str, doc: FeedDoc) {
        let _ = self
            .tx
            .send(msg(Input::Feed {
                url: url.to_owned(),
                doc: Box::new(doc),
            }))
            .await;
    }

    /// A feed went stale: its state is dropped (fail open).
    pub async fn feed_stale(&self, url: &str) {
        let _ = self
            .tx
            .send(msg(Input::FeedStale {
                url: url.to_owned(),
            }))
            .await;
    }
}
