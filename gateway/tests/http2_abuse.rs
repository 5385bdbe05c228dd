#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! HTTP/2 attacks on the data listener, written as raw frames over a TCP socket: a rapid-reset
//! flood (CVE-2023-44487), a CONTINUATION flood (CVE-2024-27316 class) and a SETTINGS flood
//! whose ACKs are never read. For each: the attacking connection is closed within a bounded
//! time, the refusal is counted in `infergate_connections_closed_total`, another client (the
//! `h2` crate over h2c) is served during and after the attack, and the process's resident
//! memory grows by a bounded amount.
//!
//! These run on a normal (not paused) runtime with generous real-time deadlines; the numbers in
//! docs/security.md ("HTTP/2") come from the lines they print (`--nocapture`).

use std::time::{Duration, Instant};

use http::{Request, StatusCode};
use infergate_gateway::{Running, Source};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Longest an attacking connection may stay open once its attack is under way.
const CLOSE_WITHIN: Duration = Duration::from_secs(8);
/// How long attacking connections are opened one after another.
const ATTACK_FOR: Duration = Duration::from_millis(500);
/// Most the resident memory may grow during one attack (generous: several tests share the
/// process, and the allocator keeps what it freed).
const RSS_BOUND_KIB: u64 = 64 * 1024;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const CANCEL: u32 = 0x8;
const ENHANCE_YOUR_CALM: u32 = 0xb;

fn yaml(http2: &str) -> String {
    format!(
        "listeners:\n  data: {{ address: \"127.0.0.1:0\" }}\n  admin: {{ address: \"127.0.0.1:0\" }}\n\
         limits: {{ keepalive_timeout: 1s, header_read_timeout: 1s, http2: {{ {http2} }} }}\n\
         backends:\n  - name: b\n    endpoints: [{{ url: \"http://127.0.0.1:9\" }}]\n\
         models:\n  - {{ name: demo, backend: b }}\n"
    )
}

async fn gateway(yaml: &str) -> Result<Running, infergate_gateway::StartError> {
    infergate_gateway::start(Source {
        path: None,
        text: yaml,
        poll: Duration::from_secs(1),
    })
    .await
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.extend([kind, flags]);
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

/// HPACK of `GET /v1/models` (`:method GET`, `:scheme http` indexed; `:path` literal).
fn get_models_block() -> Vec<u8> {
    let mut b = vec![0x82, 0x86, 0x04, 10];
    b.extend(b"/v1/models");
    b
}

/// The client preface and an empty SETTINGS frame.
fn preface() -> Vec<u8> {
    let mut p = PREFACE.to_vec();
    p.extend(frame(SETTINGS, 0, 0, &[]));
    p
}

/// The process's resident memory, KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A normal request on its own HTTP/2 connection (the `h2` crate, prior knowledge).
async fn normal_request(gw: &Running) -> StatusCode {
    let tcp = TcpStream::connect(gw.data_addr).await.unwrap();
    let (mut client, conn) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(conn);
    let req = Request::get(format!("http://{}/v1/models", gw.data_addr))
        .body(())
        .unwrap();
    let (resp, _) = client.send_request(req, true).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), resp)
        .await
        .expect("the normal request timed out")
        .unwrap();
    let status = resp.status();
    let mut body = resp.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    drop(client);
    driver.abort();
    status
}

/// Runs `attack` on one connection after another for at least [`ATTACK_FOR`] while a normal
/// client sends requests on its own connection, then sends one more; all must succeed.
/// Returns what each attacking connection returned.
async fn served_during<F, Fut>(gw: &Running, mut attack: F) -> Vec<Fut::Output>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future,
{
    let start = Instant::now();
    let attacks = async {
        let mut out = Vec::new();
        while out.is_empty() || start.elapsed() < ATTACK_FOR {
            out.push(attack().await);
        }
        out
    };
    let mut attacks = std::pin::pin!(attacks);
    let mut served = 0;
    let out = loop {
        tokio::select! {
            out = &mut attacks => break out,
            status = normal_request(gw) => {
                assert_eq!(status, StatusCode::OK, "a normal request during the attack");
                served += 1;
            }
        }
    };
    assert_eq!(normal_request(gw).await, StatusCode::OK, "after the attack");
    println!(
        "{} attacking connections in {:?}; normal requests served meanwhile: {served}",
        out.len(),
        start.elapsed()
    );
    assert!(served > 0, "no normal request completed during the attack");
    out
}

/// Reads frames until the server closes: the error code and debug data of its GOAWAY, if one
/// came first.
async fn read_until_closed(mut rd: tokio::net::tcp::OwnedReadHalf) -> Option<(u32, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut goaway = None;
    loop {
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => return goaway,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        while buf.len() >= 9 {
            let len = usize::from(buf[0]) << 16 | usize::from(buf[1]) << 8 | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            if buf[3] == GOAWAY && len >= 8 {
                let code = u32::from_be_bytes(buf[13..17].try_into().unwrap());
                let debug = String::from_utf8_lossy(&buf[17..9 + len]).into_owned();
                goaway = Some((code, debug));
            }
            buf.drain(..9 + len);
        }
    }
}

/// The value of `infergate_connections_closed_total{listener="data",reason}`.
fn closed_total(gw: &Running, reason: &str) -> u64 {
    let text = String::from_utf8(gw.gateway.metrics().encode()).unwrap();
    let series =
        format!("infergate_connections_closed_total{{listener=\"data\",reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Waits until `infergate_connections_closed_total{reason}` is `n` (the count follows the
/// connection's end by a moment); fails if it is not within 5 s.
async fn wait_closed_total(gw: &Running, reason: &str, n: usize) {
    let n = u64::try_from(n).unwrap();
    let start = Instant::now();
    while closed_total(gw, reason) != n {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "infergate_connections_closed_total{{reason={reason:?}}} is {}, not {n}",
            closed_total(gw, reason)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends HEADERS then RST_STREAM on new streams, 100 pairs a write, until the server closes
/// the connection or `max_pairs` were sent (then sends nothing more and waits for the close).
/// Returns (pairs sent, GOAWAY, time to close).
async fn rapid_reset(
    gw: &Running,
    max_pairs: u32,
) -> (u32, Option<(u32, String)>, Option<Duration>) {
    let tcp = TcpStream::connect(gw.data_addr).await.unwrap();
    let (rd, mut wr) = tcp.into_split();
    let start = Instant::now();
    let mut reader = tokio::spawn(read_until_closed(rd));
    wr.write_all(&preface()).await.unwrap();
    let block = get_models_block();
    let mut sent = 0;
    let mut stream = 1u32;
    while sent < max_pairs && !reader.is_finished() {
        let mut batch = Vec::new();
        for _ in 0..100 {
            batch.extend(frame(HEADERS, END_STREAM | END_HEADERS, stream, &block));
            batch.extend(frame(RST_STREAM, 0, stream, &CANCEL.to_be_bytes()));
            stream += 2;
        }
        if wr.write_all(&batch).await.is_err() {
            break;
        }
        sent += 100;
        tokio::task::yield_now().await;
    }
    match tokio::time::timeout(CLOSE_WITHIN, &mut reader).await {
        Ok(code) => (sent, code.unwrap(), Some(start.elapsed())),
        Err(_) => {
            reader.abort();
            (sent, None, None)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rapid_reset_flood_is_closed_with_enhance_your_calm() {
    let gw = gateway(&yaml("max_pending_accept_reset_streams: 20"))
        .await
        .unwrap();
    let rss = rss_kib();
    let runs = served_during(&gw, || rapid_reset(&gw, RAPID_RESET_PAIRS)).await;
    let grown = rss_kib().saturating_sub(rss);
    let sent: u32 = runs.iter().map(|r| r.0).sum();
    let slowest = runs.iter().filter_map(|r| r.2).max();
    println!("rapid reset: {sent} HEADERS+RST_STREAM pairs sent on {} connections, first GOAWAY {:?}, slowest close {slowest:?}, RSS +{grown} KiB", runs.len(), runs[0].1);
    for (sent, goaway, closed_after) in &runs {
        assert!(
            closed_after.is_some(),
            "an attacking connection was not closed"
        );
        let (code, debug) = goaway.as_ref().expect("no GOAWAY");
        assert_eq!(
            (*code, debug.as_str()),
            (ENHANCE_YOUR_CALM, "too_many_resets")
        );
        assert!(*sent <= RAPID_RESET_PAIRS);
    }
    assert!(grown < RSS_BOUND_KIB, "RSS grew by {grown} KiB");
    wait_closed_total(&gw, "enhance_your_calm", runs.len()).await;
}

/// Pairs sent on one attacking connection at most: far over the limit of 20, far under a
/// limit raised to 10000 (then the connection outlives the attack and is closed only when
/// idle, with GOAWAY `NO_ERROR`, which fails the test).
const RAPID_RESET_PAIRS: u32 = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continuation_flood_is_closed_with_enhance_your_calm() {
    let gw = gateway(&yaml("")).await.unwrap();
    let rss = rss_kib();
    let attack = || async {
        let tcp = TcpStream::connect(gw.data_addr).await.unwrap();
        let (rd, mut wr) = tcp.into_split();
        let start = Instant::now();
        let mut reader = tokio::spawn(read_until_closed(rd));
        wr.write_all(&preface()).await.unwrap();
        // A header whose name is announced as 1 MiB long: its bytes follow in CONTINUATION
        // frames, none of which ends the header block.
        let mut block = vec![0x82, 0x86, 0x84, 0x00, 0x7f];
        let mut n: u32 = (1 << 20) - 127;
        while n >= 128 {
            block.push(u8::try_from(n % 128).unwrap() | 0x80);
            n /= 128;
        }
        block.push(u8::try_from(n).unwrap());
        wr.write_all(&frame(HEADERS, END_STREAM, 1, &block))
            .await
            .unwrap();
        let cont = frame(CONTINUATION, 0, 1, &[b'a'; 1024]);
        let mut sent = 0u32;
        while sent < 100_000 && !reader.is_finished() {
            if wr.write_all(&cont.repeat(16)).await.is_err() {
                break;
            }
            sent += 16;
            tokio::task::yield_now().await;
        }
        let code = tokio::time::timeout(CLOSE_WITHIN, &mut reader)
            .await
            .expect("the attacking connection was not closed")
            .unwrap();
        (sent, code, start.elapsed())
    };
    let runs = served_during(&gw, attack).await;
    let grown = rss_kib().saturating_sub(rss);
    let sent: u32 = runs.iter().map(|r| r.0).sum();
    let slowest = runs.iter().map(|r| r.2).max();
    println!("CONTINUATION flood: {sent} CONTINUATION frames of 1 KiB sent on {} connections, first GOAWAY {:?}, slowest close {slowest:?}, RSS +{grown} KiB", runs.len(), runs[0].1);
    for (sent, goaway, _) in &runs {
        let (code, debug) = goaway.as_ref().expect("no GOAWAY");
        assert_eq!(
            (*code, debug.as_str()),
            (ENHANCE_YOUR_CALM, "too_many_continuations")
        );
        assert!(*sent < 100_000, "the whole flood was accepted");
    }
    assert!(grown < RSS_BOUND_KIB, "RSS grew by {grown} KiB");
    wait_closed_total(&gw, "enhance_your_calm", runs.len()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_flood_that_reads_no_ack_is_dropped() {
    let gw = gateway(&yaml("")).await.unwrap();
    let rss = rss_kib();
    let attack = || async {
        // A small receive buffer, never read: the gateway's ACKs soon fill it.
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket.connect(gw.data_addr).await.unwrap();
        let start = Instant::now();
        let (_rd, mut wr) = tcp.into_split();
        wr.write_all(&preface()).await.unwrap();
        let batch = frame(SETTINGS, 0, 0, &[]).repeat(1000);
        let mut sent = 0u64;
        // Writes fail once the gateway has dropped the connection (RST); until then they go
        // on, or wait while the gateway reads nothing.
        let closed = tokio::time::timeout(CLOSE_WITHIN, async {
            while wr.write_all(&batch).await.is_ok() {
                sent += 1000;
            }
        })
        .await;
        (sent, closed.is_ok(), start.elapsed())
    };
    let runs = served_during(&gw, attack).await;
    let grown = rss_kib().saturating_sub(rss);
    let (sent, closed, closed_after) = runs[0];
    println!("SETTINGS flood: {sent} SETTINGS frames sent, ACKs unread, closed: {closed} after {closed_after:?}, RSS +{grown} KiB");
    assert!(
        runs.iter().all(|r| r.1),
        "an attacking connection was not closed"
    );
    assert!(grown < RSS_BOUND_KIB, "RSS grew by {grown} KiB");
    wait_closed_total(&gw, "close_timeout", runs.len()).await;
}

#[tokio::test]
async fn http2_limits_out_of_bounds_are_refused() {
    for (http2, field) in [
        ("max_concurrent_streams: 0", "max_concurrent_streams"),
        (
            "max_pending_accept_reset_streams: 20000",
            "max_pending_accept_reset_streams",
        ),
        ("initial_stream_window: 1KiB", "initial_stream_window"),
        (
            "initial_connection_window: 1GiB",
            "initial_connection_window",
        ),
        ("keepalive_ping_interval: 0s", "keepalive_ping_interval"),
        ("keepalive_ping_timeout: 0s", "keepalive_ping_timeout"),
    ] {
        let err = gateway(&yaml(http2)).await.err().expect(http2).to_string();
        assert!(err.contains(&format!("limits.http2.{field}")), "{err}");
    }
}
