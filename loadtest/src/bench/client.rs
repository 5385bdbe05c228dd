//! Sending one streamed request and measuring it.
//!
//! Requests go through one pooled keep-alive client (hyper-util's legacy client, HTTP/1.1,
//! `TCP_NODELAY`). The body is read frame by frame; each frame is timestamped when it arrives
//! and fed to the incremental SSE parser, so token events carry the arrival time of the frame
//! that completed them. Nothing the server sends can make this panic: every failure becomes a
//! [`Kind`] and a short message.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use infergate_wire::sse::{Event, SseParser};

pub use super::live::Live;
use super::messages::{error_chain, fmt_duration, status_message, truncate};
use super::record::{Kind, Record};
pub use super::target::{http_client, HttpClient, Target};
use super::workload::Prepared;

/// The most bytes of an error response read for its message.
const MAX_ERROR_BODY: usize = 4096;

/// What has been seen of a response so far (kept when the timeout cuts it).
struct State {
    parser: SseParser,
    status: Option<u16>,
    first: Option<Instant>,
    last: Option<Instant>,
    itl: Vec<u32>,
    events: u64,
    done: bool,
    kind: Option<Kind>,
    error: Option<String>,
}

/// What every request of a run shares.
pub struct Ctx {
    pub client: HttpClient,
    pub target: Target,
    /// Per-request limit, from send to the end of the response.
    pub timeout: Duration,
    pub live: Arc<Live>,
}

/// Sends `prepared` and measures it. `t0` is the start of the step; `scheduled_us` when the
/// request was due, relative to it.
pub async fn execute(
    ctx: &Ctx,
    prepared: Prepared,
    id: u64,
    t0: Instant,
    scheduled_us: u64,
) -> Record {
    let (client, target, timeout, live) = (&ctx.client, &ctx.target, ctx.timeout, &ctx.live);
    let Prepared {
        body,
        max_tokens,
        digest,
    } = prepared;
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = target.uri.clone();
    *req.headers_mut() = target.headers.clone();
    // One gap per token after the first: with `max_tokens` reached, the boxed slice of the
    // record takes the buffer as it is.
    let cap = max_tokens.map_or(64, |n| n.saturating_sub(1).min(1 << 16) as usize);
    let mut st = State {
        parser: SseParser::new(),
        status: None,
        first: None,
        last: None,
        itl: Vec::with_capacity(cap),
        events: 0,
        done: false,
        kind: None,
        error: None,
    };
    live.sent.fetch_add(1, Ordering::Relaxed);
    let sent = Instant::now();
    let deadline = tokio::time::Instant::from_std(sent + timeout);
    if tokio::time::timeout_at(deadline, drive(client, req, &mut st, live, sent))
        .await
        .is_err()
    {
        st.kind = Some(Kind::Timeout);
        st.error = Some(format!(
            "no complete response within {}",
            fmt_duration(timeout)
        ));
    }
    let end = Instant::now();
    let kind = st.kind.unwrap_or(Kind::StreamError);
    live.done.fetch_add(1, Ordering::Relaxed);
    if kind != Kind::Ok {
        live.errors.fetch_add(1, Ordering::Relaxed);
    }
    let usage = st.parser.usage;
    let completion = usage.and_then(|u| u.completion_tokens);
    Record {
        id,
        scheduled_us,
        sent_us: micros(sent.saturating_duration_since(t0)),
        ttft_us: st.first.map(|f| micros(f.saturating_duration_since(sent))),
        e2e_us: micros(end.saturating_duration_since(sent)),
        itl_us: st.itl.into_boxed_slice(),
        input_tokens: usage.and_then(|u| u.prompt_tokens),
        output_tokens: completion.unwrap_or(st.events),
        token_events: st.events,
        usage_reported: completion.is_some(),
        max_tokens,
        status: st.status,
        kind,
        error: st.error,
        digest,
    }
}

async fn drive(
    client: &HttpClient,
    req: Request<Full<Bytes>>,
    st: &mut State,
    live: &Live,
    sent: Instant,
) {
    let resp = match client.request(req).await {
        Ok(r) => r,
        Err(e) => {
            st.kind = Some(Kind::Connect);
            st.error = Some(truncate(error_chain(&e)));
            return;
        }
    };
    let status = resp.status();
    st.status = Some(status.as_u16());
    let mut body = resp.into_body();
    if !status.is_success() {
        st.kind = Some(Kind::from_status(status.as_u16()));
        let mut buf = Vec::new();
        while buf.len() < MAX_ERROR_BODY {
            match body.frame().await {
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        let room = MAX_ERROR_BODY - buf.len();
                        buf.extend_from_slice(d.get(..room.min(d.len())).unwrap_or_default());
                    }
                }
                _ => break,
            }
        }
        st.error = Some(truncate(status_message(status, &buf)));
        return;
    }
    loop {
        match body.frame().await {
            None => break,
            Some(Err(e)) => {
                st.kind = Some(Kind::StreamError);
                st.error = Some(truncate(format!(
                    "stream cut after {} token events: {}",
                    st.events,
                    error_chain(&e)
                )));
                return;
            }
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let now = Instant::now();
                let State {
                    parser,
                    first,
                    last,
                    itl,
                    events,
                    done,
                    error,
                    ..
                } = st;
                parser.feed(&data, |ev| match ev {
                    Event::Token => {
                        if first.is_none() {
                            *first = Some(now);
                            live.ttft
                                .record(micros(now.saturating_duration_since(sent)));
                        }
                        if let Some(prev) = *last {
                            let gap = micros(now.saturating_duration_since(prev));
                            itl.push(u32::try_from(gap).unwrap_or(u32::MAX));
                        }
                        *last = Some(now);
                        *events += 1;
                    }
                    Event::Done => *done = true,
                    Event::Error(msg) => {
                        if error.is_none() {
                            *error = Some(if msg.is_empty() {
                                "SSE error event".to_owned()
                            } else {
                                truncate(format!("SSE error event: {msg}"))
                            });
                        }
                    }
                    Event::Other => {}
                });
                if st.error.is_some() {
                    st.kind = Some(Kind::StreamError);
                    return;
                }
            }
        }
    }
    if st.done {
        st.kind = Some(Kind::Ok);
    } else {
        st.kind = Some(Kind::StreamError);
        st.error = Some(format!(
            "stream ended without [DONE] after {} token events",
            st.events
        ));
    }
}

/// Microseconds, saturating.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
