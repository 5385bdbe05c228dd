//! ComfyUI: its paths, and the pinning that keeps one client's job on one instance.
//!
//! A ComfyUI job lives on the instance that took its prompt: the progress messages go to the
//! WebSocket of the `client_id` named in the prompt, and `/history/{prompt_id}` and `/view`
//! answer only there. The gateway pins:
//!
//! - **by client id**, for `/ws?clientId=X`, `POST /prompt` with body `"client_id": "X"`, and any
//!   ComfyUI request carrying a `clientId` or `client_id` query parameter or an
//!   `x-infergate-client-id` header: the endpoint is the first, in rendezvous-hash order of
//!   `hash(client id, endpoint URL)` over the variant's endpoints, that is not ejected (the same
//!   function for all of them, so one client's socket and prompts meet on one instance, on every
//!   gateway replica);
//! - **by prompt id**, for `/history/{prompt_id}` without a client id: the gateway reads
//!   `prompt_id` from each `/prompt` response and remembers which endpoint took it (a bounded
//!   map, [`PROMPT_CAPACITY`] entries for [`PROMPT_TTL`]); this works on the replica that
//!   passed the prompt.
//!
//! A request with neither (or whose prompt is forgotten) goes to any endpoint, as other traffic.
//! `/view` carries no prompt id: clients send their client id with it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use http::{HeaderMap, HeaderName, Method};
use serde::Deserialize;
use tokio::time::Instant;

use super::Refusal;

/// The header that names a ComfyUI client where the query cannot.
pub static X_INFERGATE_CLIENT_ID: HeaderName = HeaderName::from_static("x-infergate-client-id");
/// Prompts remembered at most; the oldest is forgotten first.
pub const PROMPT_CAPACITY: usize = 65_536;
/// How long a prompt's endpoint is remembered.
pub const PROMPT_TTL: Duration = Duration::from_secs(3600);
/// Longest client or prompt id kept; a longer one does not pin.
const MAX_ID: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// `POST /prompt`: queues a job; its `client_id` is in the body.
    Prompt,
    /// `/history[/{prompt_id}]`.
    History,
    /// `/ws` with a WebSocket upgrade.
    WebSocket,
    /// `/view`, `/queue`, `GET /prompt`, `/ws` without an upgrade.
    Other,
}

/// A ComfyUI request and what may pin it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComfyCall {
    pub kind: CallKind,
    pub client_id: Option<String>,
    pub prompt_id: Option<String>,
}

/// Reads a ComfyUI request; `None` when the path is not one of ComfyUI's.
pub fn classify(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Option<Result<ComfyCall, Refusal>> {
    let (kind, prompt_id) = match path {
        "/prompt" if method == Method::POST => (CallKind::Prompt, None),
        "/prompt" | "/view" | "/queue" => (CallKind::Other, None),
        "/history" => (CallKind::History, None),
        "/ws" if is_websocket_upgrade(headers) => {
            if method != Method::GET {
                return Some(Err(Refusal::Method("GET")));
            }
            (CallKind::WebSocket, None)
        }
        "/ws" => (CallKind::Other, None),
        _ => {
            let id = path.strip_prefix("/history/")?;
            let id = (!id.is_empty() && !id.contains('/') && id.len() <= MAX_ID).then_some(id);
            (CallKind::History, id.map(str::to_owned))
        }
    };
    let client_id = query
        .and_then(|q| query_value(q, "clientId").or_else(|| query_value(q, "client_id")))
        .filter(|c| !c.is_empty() && c.len() <= MAX_ID)
        .or_else(|| header_client_id(headers));
    Some(Ok(ComfyCall {
        kind,
        client_id,
        prompt_id,
    }))
}

/// The client id of the `x-infergate-client-id` header, when it is usable.
pub fn header_client_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get(&X_INFERGATE_CLIENT_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|c| !c.is_empty() && c.len() <= MAX_ID)
        .map(str::to_owned)
}

/// `Connection: upgrade` with `Upgrade: websocket` (HTTP/1.1).
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let has = |name: http::header::HeaderName, want: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(want))
    };
    has(http::header::CONNECTION, "upgrade") && has(http::header::UPGRADE, "websocket")
}

/// The value of `name` in a query string (`+` and `%XX` decoded).
fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The top-level `client_id` string of a `/prompt` body, if it has one.
pub fn body_client_id(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Prompt {
        #[serde(default)]
        client_id: Option<serde_json::Value>,
    }
    let p: Prompt = serde_json::from_slice(body).ok()?;
    match p.client_id? {
        serde_json::Value::String(s) if !s.is_empty() && s.len() <= MAX_ID => Some(s),
        _ => None,
    }
}

/// The `prompt_id` of a `/prompt` response body.
pub fn response_prompt_id(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Queued {
        #[serde(default)]
        prompt_id: Option<serde_json::Value>,
    }
    let q: Queued = serde_json::from_slice(body).ok()?;
    match q.prompt_id? {
        serde_json::Value::String(s) if !s.is_empty() && s.len() <= MAX_ID => Some(s),
        _ => None,
    }
}

/// Which endpoint (by URL) took each recent prompt. Bounded by [`PROMPT_CAPACITY`] and
/// [`PROMPT_TTL`].
#[derive(Debug, Default)]
pub struct PromptMap {
    inner: Mutex<Prompts>,
}

#[derive(Debug, Default)]
struct Prompts {
    by_id: HashMap<String, (Box<str>, Instant)>,
    /// Insertion order, for forgetting the oldest.
    order: VecDeque<String>,
}

impl PromptMap {
    pub fn remember(&self, prompt_id: String, endpoint: &str, now: Instant) {
        let mut p = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while p.order.len() >= PROMPT_CAPACITY {
            if let Some(old) = p.order.pop_front() {
                p.by_id.remove(&old);
            }
        }
        if p.by_id
            .insert(prompt_id.clone(), (endpoint.into(), now))
            .is_none()
        {
            p.order.push_back(prompt_id);
        }
    }

    /// The endpoint URL that took `prompt_id`, unless it was forgotten or is older than the TTL.
    pub fn endpoint(&self, prompt_id: &str, now: Instant) -> Option<Box<str>> {
        let p = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (url, at) = p.by_id.get(prompt_id)?;
        (now.saturating_duration_since(*at) < PROMPT_TTL).then(|| url.clone())
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .by_id
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
