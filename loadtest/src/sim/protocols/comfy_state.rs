//! The ComfyUI stub's shared state: the prompt queue, the history, the images produced and
//! the WebSocket clients.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Most history entries kept; the oldest go first.
const MAX_HISTORY: usize = 1000;
/// Messages buffered per WebSocket; a client that falls further behind loses messages.
const CLIENT_BUFFER: usize = 256;
/// Most prompts queued (pending or running); beyond it `/prompt` answers 429.
pub const MAX_QUEUE: usize = 1000;

/// A prompt in the queue.
#[derive(Clone, Debug)]
pub struct QueueItem {
    pub number: u64,
    pub prompt_id: String,
    pub prompt: Value,
    pub client_id: Option<String>,
    /// Ids of the output nodes (the nodes that save images).
    pub outputs: Vec<String>,
}

impl QueueItem {
    /// ComfyUI's queue and history form: `[number, prompt_id, prompt, extra, outputs]`.
    pub fn as_list(&self) -> Value {
        json!([
            self.number,
            self.prompt_id,
            self.prompt,
            {"client_id": self.client_id},
            self.outputs,
        ])
    }
}

#[derive(Default)]
struct Inner {
    number: u64,
    pending: VecDeque<QueueItem>,
    running: Option<QueueItem>,
    history: HashMap<String, Value>,
    history_order: VecDeque<String>,
    images: HashSet<String>,
    image_counter: u64,
    clients: HashMap<String, Vec<mpsc::Sender<String>>>,
    /// The tasks executing prompts, aborted by [`ComfyState::abort_all`].
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Inner {
    fn queue_remaining(&self) -> usize {
        self.pending.len() + usize::from(self.running.is_some())
    }

    fn status(&self, sid: Option<&str>) -> String {
        let mut data =
            json!({"status": {"exec_info": {"queue_remaining": self.queue_remaining()}}});
        if let (Some(sid), Some(map)) = (sid, data.as_object_mut()) {
            map.insert("sid".into(), Value::from(sid));
        }
        json!({"type": "status", "data": data}).to_string()
    }

    /// Sends `text` to every socket of `client_id`, forgetting closed ones.
    fn send(&mut self, client_id: &str, text: &str) {
        if let Some(sockets) = self.clients.get_mut(client_id) {
            sockets.retain(|tx| match tx.try_send(text.to_owned()) {
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => true,
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
            if sockets.is_empty() {
                self.clients.remove(client_id);
            }
        }
    }

    fn broadcast_status(&mut self) {
        let text = self.status(None);
        let ids: Vec<String> = self.clients.keys().cloned().collect();
        for id in ids {
            self.send(&id, &text);
        }
    }
}

/// The ComfyUI stub's state; one per simulator.
#[derive(Default)]
pub struct ComfyState {
    /// Held by the prompt being executed: prompts run one at a time, in order.
    pub exec: tokio::sync::Mutex<()>,
    inner: Mutex<Inner>,
}

impl ComfyState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a prompt and tells every client the queue grew; `None` when [`MAX_QUEUE`]
    /// prompts are already queued.
    pub fn submit(
        &self,
        prompt: Value,
        client_id: Option<String>,
        outputs: Vec<String>,
    ) -> Option<QueueItem> {
        let mut inner = self.lock();
        if inner.queue_remaining() >= MAX_QUEUE {
            return None;
        }
        let item = QueueItem {
            number: inner.number,
            prompt_id: uuid(),
            prompt,
            client_id,
            outputs,
        };
        inner.number += 1;
        inner.pending.push_back(item.clone());
        inner.broadcast_status();
        Some(item)
    }

    /// Keeps the task executing a prompt, to abort it with [`ComfyState::abort_all`].
    pub fn track(&self, task: tokio::task::AbortHandle) {
        let mut inner = self.lock();
        inner.tasks.retain(|t| !t.is_finished());
        inner.tasks.push(task);
    }

    /// Aborts every prompt still queued or running (the simulator is going away).
    pub fn abort_all(&self) {
        for task in self.lock().tasks.drain(..) {
            task.abort();
        }
    }

    /// Moves a prompt from pending to running.
    pub fn start(&self, prompt_id: &str) {
        let mut inner = self.lock();
        if let Some(pos) = inner.pending.iter().position(|p| p.prompt_id == prompt_id) {
            inner.running = inner.pending.remove(pos);
        }
        inner.broadcast_status();
    }

    /// A name for the next image saved with `prefix`, remembered as produced here.
    pub fn new_image(&self, prefix: &str) -> String {
        let mut inner = self.lock();
        inner.image_counter += 1;
        let name = format!("{prefix}_{:05}_.png", inner.image_counter);
        inner.images.insert(name.clone());
        name
    }

    /// Whether this instance produced an image of that name.
    pub fn has_image(&self, name: &str) -> bool {
        self.lock().images.contains(name)
    }

    /// Sends one message to the client that submitted `item`.
    pub fn send(&self, item: &QueueItem, message: &Value) {
        if let Some(client_id) = &item.client_id {
            self.lock().send(client_id, &message.to_string());
        }
    }

    /// Records the finished prompt in the history and tells every client the queue shrank.
    pub fn finish(&self, item: &QueueItem, entry: Value) {
        let mut inner = self.lock();
        if inner
            .running
            .as_ref()
            .is_some_and(|r| r.prompt_id == item.prompt_id)
        {
            inner.running = None;
        }
        inner.history.insert(item.prompt_id.clone(), entry);
        inner.history_order.push_back(item.prompt_id.clone());
        while inner.history_order.len() > MAX_HISTORY {
            if let Some(old) = inner.history_order.pop_front() {
                inner.history.remove(&old);
            }
        }
        inner.broadcast_status();
    }

    /// A prompt that will not run (its task ended early) leaves the queue.
    pub fn forget(&self, prompt_id: &str) {
        let mut inner = self.lock();
        inner.pending.retain(|p| p.prompt_id != prompt_id);
        if inner
            .running
            .as_ref()
            .is_some_and(|r| r.prompt_id == prompt_id)
        {
            inner.running = None;
        }
        inner.broadcast_status();
    }

    /// A new WebSocket of `client_id`; it gets the queue status at once.
    pub fn connect(&self, client_id: &str) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel(CLIENT_BUFFER);
        let mut inner = self.lock();
        let _ = tx.try_send(inner.status(Some(client_id)));
        inner
            .clients
            .entry(client_id.to_owned())
            .or_default()
            .push(tx);
        rx
    }

    /// `GET /history/{id}`: `{id: entry}`, or `{}` when unknown or not finished.
    pub fn history(&self, prompt_id: Option<&str>) -> Value {
        let inner = self.lock();
        let mut out = serde_json::Map::new();
        match prompt_id {
            Some(id) => {
                if let Some(entry) = inner.history.get(id) {
                    out.insert(id.to_owned(), entry.clone());
                }
            }
            None => {
                for id in &inner.history_order {
                    if let Some(entry) = inner.history.get(id) {
                        out.insert(id.clone(), entry.clone());
                    }
                }
            }
        }
        Value::Object(out)
    }

    /// `GET /queue`.
    pub fn queue(&self) -> Value {
        let inner = self.lock();
        json!({
            "queue_running": inner.running.iter().map(QueueItem::as_list).collect::<Vec<_>>(),
            "queue_pending": inner.pending.iter().map(QueueItem::as_list).collect::<Vec<_>>(),
        })
    }
}

/// A random UUID (version 4) in its text form.
pub fn uuid() -> String {
    let n = (rand::random::<u128>() & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let hex = format!("{n:032x}");
    let part = |a: usize, b: usize| hex.get(a..b).unwrap_or_default().to_owned();
    format!(
        "{}-{}-{}-{}-{}",
        part(0, 8),
        part(8, 12),
        part(12, 16),
        part(16, 20),
        part(20, 32)
    )
}
