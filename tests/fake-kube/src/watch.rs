//! Watch requests: newline-delimited JSON events from a resourceVersion on, with bookmarks,
//! 410 Gone after compaction and the server-side timeout.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::kind::Kind;
use crate::list::{parse_rv, Filter};
use crate::query::Query;
use crate::shared::Shared;
use crate::stats::Stats;
use crate::status::{self, ApiError, Body};
use crate::store::{Change, EventType};

/// How long a watch lasts when the client sends no `timeoutSeconds` (or 0).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// What one watch request asked for.
struct WatchSpec {
    kind: Kind,
    namespace: Option<String>,
    filter: Filter,
    /// `None`: start with ADDED events for the current state (resourceVersion unset or "0").
    from: Option<u64>,
    bookmarks: bool,
    /// `sendInitialEvents=true`: end the initial events with a marked bookmark.
    initial_end_marker: bool,
    timeout: Duration,
}

/// Opens a watch: 200 and a stream, or a 400 for a malformed request.
pub(crate) fn watch(
    shared: Arc<Shared>,
    kind: Kind,
    namespace: Option<String>,
    q: &Query,
) -> Response<Body> {
    let spec = match parse(kind, namespace, q) {
        Ok(spec) => spec,
        Err(err) => return err.response(),
    };
    let (tx, rx) = mpsc::channel(64);
    Stats::bump(&shared.stats.watches);
    // Subscribed before answering, so that no change or bookmark request made once the
    // client has the response is missed.
    let wakers = Wakers {
        changed: shared.changed.subscribe(),
        bookmark_now: shared.bookmark_now.subscribe(),
        _open: OpenGuard::new(&shared),
    };
    tokio::spawn(run(shared, spec, wakers, tx));
    let mut resp = Response::new(ChannelBody(rx).boxed());
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn parse(kind: Kind, namespace: Option<String>, q: &Query) -> Result<WatchSpec, ApiError> {
    let filter = Filter::from_query(q, kind)?;
    let from = match q
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
    {
        None => None,
        Some(rv) => Some(parse_rv(rv)?),
    };
    let timeout = match q.get("timeoutSeconds").filter(|t| !t.is_empty()) {
        None => DEFAULT_TIMEOUT,
        Some(text) => match text.parse::<u64>() {
            Ok(0) => DEFAULT_TIMEOUT,
            Ok(secs) => Duration::from_secs(secs),
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "invalid timeoutSeconds {text:?}: must be a number"
                )));
            }
        },
    };
    let bookmarks = q.flag("allowWatchBookmarks");
    let initial_end_marker = q.flag("sendInitialEvents");
    if initial_end_marker && !bookmarks {
        let msg = "sendInitialEvents requires allowWatchBookmarks=true";
        return Err(ApiError::bad_request(msg));
    }
    Ok(WatchSpec {
        kind,
        namespace,
        filter,
        from,
        bookmarks,
        initial_end_marker,
        timeout,
    })
}

/// Counts the watch as open while it lives.
struct OpenGuard(Arc<Shared>);

impl OpenGuard {
    fn new(shared: &Arc<Shared>) -> OpenGuard {
        shared.stats.open_watches.fetch_add(1, Ordering::Relaxed);
        OpenGuard(Arc::clone(shared))
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.stats.open_watches.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What wakes a watch: store changes and on-demand bookmarks.
struct Wakers {
    changed: watch::Receiver<u64>,
    bookmark_now: watch::Receiver<u64>,
    _open: OpenGuard,
}

async fn run(shared: Arc<Shared>, spec: WatchSpec, wakers: Wakers, tx: mpsc::Sender<Bytes>) {
    let Wakers {
        mut changed,
        mut bookmark_now,
        _open,
    } = wakers;
    let (epoch, mut cursor, mut lines) = match start(&shared, &spec) {
        Ok(started) => started,
        Err(msg) => {
            Stats::bump(&shared.stats.gone);
            let _ = tx.send(line("ERROR", &status::expired(&msg))).await;
            return;
        }
    };
    let deadline = tokio::time::sleep(spec.timeout);
    tokio::pin!(deadline);
    let mut ticker = shared.bookmark_interval().map(|period| {
        let mut t = tokio::time::interval_at(Instant::now() + period, period);
        t.set_missed_tick_behavior(MissedTickBehavior::Delay);
        t
    });
    let mut want_bookmark = false;
    loop {
        if let Err(msg) = catch_up(&shared, &spec, epoch, &mut cursor, &mut lines) {
            Stats::bump(&shared.stats.gone);
            let _ = tx.send(line("ERROR", &status::expired(&msg))).await;
            return;
        }
        if want_bookmark && spec.bookmarks {
            Stats::bump(&shared.stats.bookmarks);
            lines.push(bookmark(spec.kind, cursor, false));
        }
        for l in lines.drain(..) {
            if tx.send(l).await.is_err() {
                return;
            }
        }
        want_bookmark = tokio::select! {
            () = tx.closed() => return,
            () = &mut deadline => return,
            r = changed.changed() => match r {
                Ok(()) => false,
                Err(_) => return,
            },
            r = bookmark_now.changed() => match r {
                Ok(()) => true,
                Err(_) => return,
            },
            () = tick(&mut ticker) => true,
        };
    }
}

/// The watch's epoch, its starting version and its first lines (the current state when it
/// starts from no version); the error is the message of a 410 for a compacted version.
fn start(shared: &Shared, spec: &WatchSpec) -> Result<(u64, u64, Vec<Bytes>), String> {
    let store = shared.store();
    let mut lines = Vec::new();
    let cursor = match spec.from {
        Some(rv) if rv < store.compacted_rv() => {
            return Err(format!(
                "too old resource version: {rv} ({})",
                store.compacted_rv()
            ));
        }
        Some(rv) => rv,
        None => {
            let at = store.rv();
            let current = store.snapshot(spec.kind, spec.namespace.as_deref(), at);
            lines.extend(
                current
                    .iter()
                    .filter(|o| spec.filter.matches(o))
                    .map(|o| line("ADDED", o)),
            );
            if spec.initial_end_marker {
                Stats::bump(&shared.stats.bookmarks);
                lines.push(bookmark(spec.kind, at, true));
            }
            at
        }
    };
    Ok((store.epoch(), cursor, lines))
}

/// Adds the events of changes after `cursor` to `lines` and moves `cursor` to the latest
/// version; the error is the message of a 410 when the store was compacted since `epoch`.
fn catch_up(
    shared: &Shared,
    spec: &WatchSpec,
    epoch: u64,
    cursor: &mut u64,
    lines: &mut Vec<Bytes>,
) -> Result<(), String> {
    let store = shared.store();
    if store.epoch() != epoch {
        return Err(format!(
            "too old resource version: {cursor} ({})",
            store.compacted_rv()
        ));
    }
    for change in store.changes_after(*cursor) {
        if let Some((ty, obj)) = event_for(spec, change) {
            lines.push(line(ty, obj));
        }
    }
    *cursor = store.rv();
    Ok(())
}

async fn tick(ticker: &mut Option<Interval>) {
    match ticker {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The event a change makes for this watch, if any. An object that stops matching the
/// selectors is DELETED for the watch; one that starts matching is ADDED, as on a real server.
fn event_for<'c>(spec: &WatchSpec, change: &'c Change) -> Option<(&'static str, &'c Value)> {
    let (kind, ns, _) = &change.key;
    if *kind != spec.kind || spec.namespace.as_ref().is_some_and(|want| want != ns) {
        return None;
    }
    let now = spec.filter.matches(&change.object);
    let before = change.prev.as_ref().is_some_and(|p| spec.filter.matches(p));
    let ty = match (change.ty, before, now) {
        (EventType::Deleted, _, true) => EventType::Deleted,
        (EventType::Added, _, true) | (EventType::Modified, false, true) => EventType::Added,
        (EventType::Modified, true, true) => EventType::Modified,
        (EventType::Modified, true, false) => EventType::Deleted,
        _ => return None,
    };
    Some((ty.as_str(), &change.object))
}

fn line(ty: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": ty, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

fn bookmark(kind: Kind, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let object = json!({"kind": kind.kind(), "apiVersion": kind.api_version(), "metadata": meta});
    line("BOOKMARK", &object)
}

/// A response body fed by the watch task; it ends when the task drops its sender.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}
