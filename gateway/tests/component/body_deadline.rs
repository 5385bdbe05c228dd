//! Slow request bodies: a client that sends its head and part of its body, then nothing, holds
//! no place under `limits.max_in_flight`, and gets 408 at `limits.body_read_timeout` after its
//! head: on HTTP/1.1 its connection is then closed, on HTTP/2 only its stream ends.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Either, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::common::*;

/// Slow clients opened by each test: five times `max_in_flight`.
const SLOW: usize = 20;

/// A raw HTTP/1.1 client that declares a 100-byte body and sends 45 bytes of it.
struct SlowBody {
    /// Kept open after the part is sent: the client neither sends more nor closes.
    write: OwnedWriteHalf,
    /// What the gateway sent back, and whether it closed the connection.
    seen: Arc<Mutex<(Vec<u8>, bool)>>,
    reader: JoinHandle<()>,
}

impl SlowBody {
    async fn connect(addr: SocketAddr) -> SlowBody {
        let (mut read, write) = TcpStream::connect(addr).await.unwrap().into_split();
        let seen = Arc::new(Mutex::new((Vec::new(), false)));
        let s = seen.clone();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            loop {
                match read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => s.lock().unwrap().0.extend_from_slice(&buf[..n]),
                }
            }
            s.lock().unwrap().1 = true;
        });
        SlowBody {
            write,
            seen,
            reader,
        }
    }

    async fn send_head_and_part(&mut self) {
        let body = chat_stream(8);
        let part = &body.as_bytes()[..45];
        let head = "POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\n\
                    content-type: application/json\r\ncontent-length: 100\r\n\r\n";
        self.write.write_all(head.as_bytes()).await.unwrap();
        self.write.write_all(part).await.unwrap();
    }

    fn answered(&self) -> bool {
        !self.seen.lock().unwrap().0.is_empty()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap().0).into_owned()
    }

    /// Waits (real time) until the gateway has closed the connection; returns all it sent.
    async fn closed(&self) -> String {
        eventually("the gateway never closed the connection", || async {
            if self.reader.is_finished() && self.seen.lock().unwrap().1 {
                Ok(())
            } else {
                Err(self.text())
            }
        })
        .await;
        self.text()
    }
}

/// `SLOW` clients, each with its head and 45 of 100 body bytes sent, given the real time the
/// gateway needs to read their heads (the clock stands still meanwhile).
async fn slow_clients(addr: SocketAddr) -> Vec<SlowBody> {
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        let mut c = SlowBody::connect(addr).await;
        c.send_head_and_part().await;
        slow.push(c);
    }
    real_sleep(QUIET).await;
    slow
}

#[tokio::test(start_paused = true)]
async fn slow_bodies_hold_no_place_in_flight() {
    let _clock = ManualClock::hold();
    let sim = sim(0, 0).await;
    let gw = gateway(&config(&[url(&sim)], "", "limits: { max_in_flight: 4 }")).await;
    let slow = slow_clients(gw.data_addr).await;

    never("a slow body took a place in flight", || async {
        gw.gateway.in_flight() > 0
    })
    .await;
    never("a slow body was answered before its deadline", || async {
        slow.iter().any(SlowBody::answered)
    })
    .await;

    // Twice the limit of normal requests, one after another, with the clock standing still.
    for _ in 0..8 {
        let call = Call::post(gw.data_addr, "/v1/chat/completions", &chat_stream(4), &[]);
        let sent = call.sent;
        let r = call.reply().await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body())
        );
        assert_eq!(Instant::now(), sent, "the request waited for the clock");
    }
    assert!(
        slow.iter().all(|c| !c.answered()),
        "a slow body was answered"
    );
    assert_eq!(
        metric(
            gw.admin_addr,
            "infergate_requests_total",
            &[("outcome", "overloaded")]
        )
        .await,
        0.0
    );
}

#[tokio::test(start_paused = true)]
async fn slow_body_gets_408_at_the_deadline_and_its_connection_closes() {
    let _clock = ManualClock::hold();
    let sim = sim(0, 0).await;
    let top = "limits: { max_in_flight: 4, body_read_timeout: 2s }";
    let gw = gateway(&config(&[url(&sim)], "", top)).await;
    // The deadline counts from the end of the head, not from the connection.
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        slow.push(SlowBody::connect(gw.data_addr).await);
    }
    advance(Duration::from_secs(1)).await;
    for c in &mut slow {
        c.send_head_and_part().await;
    }
    real_sleep(QUIET).await;
    let head_at = Instant::now();

    advance(Duration::from_secs(2) - MS).await;
    never("a slow body was answered before its deadline", || async {
        slow.iter().any(SlowBody::answered)
    })
    .await;
    advance(MS).await;
    for c in &slow {
        let text = c.closed().await;
        let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
        assert!(head.starts_with("HTTP/1.1 408 "), "{text}");
        assert!(
            head.to_ascii_lowercase().contains("\r\nconnection: close"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(json["error"]["code"], "request_body_timeout", "{text}");
        assert_eq!(json["error"]["type"], "invalid_request_error", "{text}");
    }
    assert_eq!(Instant::now() - head_at, Duration::from_secs(2));
    wait_metric(
        gw.admin_addr,
        "infergate_requests_total",
        &[("outcome", "bad_request")],
        SLOW as f64,
    )
    .await;
    assert_eq!(gw.gateway.in_flight(), 0);
    wait_metric(
        gw.admin_addr,
        "infergate_connections_open",
        &[("listener", "data")],
        0.0,
    )
    .await;
}

/// A request body that sends `part` and then nothing, without ending.
struct Stalled(Option<Bytes>);

impl Body for Stalled {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.0.take() {
            Some(part) => Poll::Ready(Some(Ok(Frame::data(part)))),
            None => Poll::Pending,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn http2_slow_body_gets_408_and_its_connection_serves_on() {
    let _clock = ManualClock::hold();
    let sim = sim(0, 0).await;
    let top = "limits: { max_in_flight: 4, body_read_timeout: 2s }";
    let gw = gateway(&config(&[url(&sim)], "", top)).await;
    let tcp = TcpStream::connect(gw.data_addr).await.unwrap();
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let request = |body: Either<Stalled, Full<Bytes>>, len: usize| {
        Request::post(format!("http://{}/v1/chat/completions", gw.data_addr))
            .header("content-type", "application/json")
            .header("content-length", len)
            .body(body)
            .unwrap()
    };
    let body = chat_stream(8);
    let part = Bytes::copy_from_slice(&body.as_bytes()[..45]);
    let stalled: Vec<_> = (0..SLOW)
        .map(|_| {
            let mut send = send.clone();
            let req = request(Either::Left(Stalled(Some(part.clone()))), 100);
            tokio::spawn(async move { send.send_request(req).await })
        })
        .collect();
    real_sleep(QUIET).await;
    let head_at = Instant::now();
    never("a slow body took a place in flight", || async {
        gw.gateway.in_flight() > 0
    })
    .await;

    // Other streams of the same connection are served meanwhile.
    let mut s = send.clone();
    let r = s
        .send_request(request(
            Either::Right(Full::new(Bytes::from(body.clone()))),
            body.len(),
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.into_body().collect().await.unwrap();
    assert_eq!(Instant::now(), head_at, "the request waited for the clock");

    advance(Duration::from_secs(2) - MS).await;
    never("a slow body was answered before its deadline", || async {
        stalled.iter().any(|t| t.is_finished())
    })
    .await;
    advance(MS).await;
    for t in stalled {
        let r = eventually("no answer at the deadline", || async {
            if t.is_finished() {
                Ok(())
            } else {
                Err("waiting".to_owned())
            }
        });
        r.await;
        let r = t.await.unwrap().unwrap();
        assert_eq!(r.status(), StatusCode::REQUEST_TIMEOUT);
        assert!(r.headers().get("connection").is_none());
        let json: serde_json::Value =
            serde_json::from_slice(&r.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(json["error"]["code"], "request_body_timeout");
    }

    // The connection is still open and serves the next request.
    assert!(!conn.is_finished(), "the HTTP/2 connection was closed");
    let mut s = send.clone();
    let r = s
        .send_request(request(
            Either::Right(Full::new(Bytes::from(body.clone()))),
            body.len(),
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.into_body().collect().await.unwrap();
    assert_eq!(gw.gateway.in_flight(), 0);
}
