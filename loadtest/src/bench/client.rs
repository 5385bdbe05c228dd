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
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infergate_sse::sse::{Event, SseParser};

pub use super::live::Live;
use super::record::{Kind, Record};
use super::spec::Header;
use super::workload::Prepared;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The pooled client: keep-alive connections, no idle limit, `TCP_NODELAY`.
pub fn http_client() -> HttpClient {
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    conn.enforce_http(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(usize::MAX)
        .build(conn)
}

/// Where requests go and with which headers.
#[derive(Clone, Debug)]
pub struct Target {
    pub uri: Uri,
    pub headers: HeaderMap,
}

impl Target {
    /// `extra` headers are added last and replace the defaults of the same name.
    pub fn new(uri: Uri, api_key: Option<&str>, extra: &[Header]) -> Result<Self, String> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("infergate-bench/", env!("CARGO_PKG_VERSION"))),
        );
        if let Some(key) = api_key {
            let v = HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| "the API key is not a valid header value".to_owned())?;
            headers.insert(AUTHORIZATION, v);
        }
        for h in extra {
            headers.remove(&h.name);
        }
        for h in extra {
            headers.append(h.name.clone(), h.value.clone());
        }
        Ok(Self { uri, headers })
    }
}

/// The longest error message kept in a record.
const MAX_ERROR: usize = 300;
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

fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// An error and its sources, joined with `: `.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let m = inner.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = inner.source();
    }
    s
}

/// `503: <error.message>` from an OpenAI error body, else the start of the body.
fn status_message(status: http::StatusCode, body: &[u8]) -> String {
    let msg = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("error")
                .and_then(|e| e.get("message").or(Some(e)))
                .and_then(|m| m.as_str().map(str::to_owned))
                .or_else(|| v.get("message").and_then(|m| m.as_str().map(str::to_owned)))
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    if msg.is_empty() {
        format!("HTTP {}", status.as_u16())
    } else {
        format!("HTTP {}: {msg}", status.as_u16())
    }
}

/// At most [`MAX_ERROR`] bytes, cut at a character boundary.
fn truncate(mut s: String) -> String {
    if s.len() > MAX_ERROR {
        let mut cut = MAX_ERROR;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(
            status_message(
                http::StatusCode::SERVICE_UNAVAILABLE,
                br#"{"error":{"message":"busy","type":"x"}}"#
            ),
            "HTTP 503: busy"
        );
        assert_eq!(
            status_message(http::StatusCode::NOT_FOUND, b"no such route"),
            "HTTP 404: no such route"
        );
        assert_eq!(
            status_message(http::StatusCode::BAD_GATEWAY, b""),
            "HTTP 502"
        );
        let long = "é".repeat(400);
        let t = truncate(long);
        assert!(t.len() <= MAX_ERROR + '…'.len_utf8());
        assert!(t.ends_with('…'));
    }

    #[test]
    fn headers_override_defaults() {
        let t = Target::new(
            "http://127.0.0.1:1/v1/chat/completions".parse().unwrap(),
            Some("k"),
            &[
                "accept: */*".parse().unwrap(),
                "x-a: 1".parse().unwrap(),
                "x-a: 2".parse().unwrap(),
            ],
        )
        .unwrap();
        assert_eq!(t.headers[ACCEPT], "*/*");
        assert_eq!(t.headers[AUTHORIZATION], "Bearer k");
        assert_eq!(t.headers.get_all("x-a").iter().count(), 2);
    }
}
