//! `proxy-bench`: a closed-loop HTTP/1.1 load client for OpenAI-compatible chat servers.
//!
//! `proxy-bench --url http://ADDR --concurrency C --duration SECS [--stream] [--max-tokens N]`
//!
//! C workers each hold one keep-alive HTTP/1.1 connection and post `/v1/chat/completions`
//! (model `demo` by default) back to back. The first `--warmup` seconds (default 1) are not
//! counted; after that, every request that completes within `--duration` seconds is. Latency
//! is measured from just before the request is written until the whole response body has been
//! read; with `--stream`, TTFT is measured until the first body frame that holds a token
//! event (`"content":"` followed by a non-empty string). Prints one JSON line:
//!
//! `{"requests":N,"errors":E,"rps":..,"p50_ms":..,"p99_ms":..,"ttft_p50_ms":..,"ttft_p99_ms":..}`
//!
//! (`ttft_*` are `null` without `--stream`). An error is a failed connection, a transport
//! error, a non-2xx status or a request slower than `--timeout`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

#[derive(Parser, Debug)]
#[command(
    name = "proxy-bench",
    about = "Closed-loop load client for /v1/chat/completions"
)]
struct Args {
    /// Base URL of the server, `http://HOST:PORT`.
    #[arg(long)]
    url: String,
    /// Concurrent workers, each with its own keep-alive connection.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Measured seconds (after the warmup).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warmup seconds, not counted.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Request a streamed response and measure TTFT.
    #[arg(long)]
    stream: bool,
    /// `max_tokens` to request; the server's default when absent.
    #[arg(long)]
    max_tokens: Option<u32>,
    /// The `model` of the requests.
    #[arg(long, default_value = "demo")]
    model: String,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
}

/// What every worker shares: the request, prepared once.
struct Plan {
    /// `host:port` to connect to.
    addr: String,
    host: HeaderValue,
    uri: Uri,
    body: Bytes,
    stream: bool,
    timeout: Duration,
    warm_end: Instant,
    end: Instant,
}

#[derive(Default)]
struct Stats {
    /// Latencies of the counted requests, in nanoseconds.
    latency: Vec<u64>,
    ttft: Vec<u64>,
    errors: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let uri: Uri = match args.url.parse() {
        Ok(u) => u,
        Err(e) => {
            eprintln!("proxy-bench: bad --url {:?}: {e}", args.url);
            return ExitCode::from(2);
        }
    };
    let (Some(authority), Some("http")) = (uri.authority(), uri.scheme_str()) else {
        eprintln!("proxy-bench: --url must be http://HOST:PORT");
        return ExitCode::from(2);
    };
    let bad = |x: f64| x.is_nan() || x.is_infinite() || x < 0.0;
    if args.concurrency == 0 || bad(args.duration) || args.duration == 0.0 || bad(args.warmup) {
        eprintln!("proxy-bench: --concurrency and --duration must be positive, --warmup >= 0");
        return ExitCode::from(2);
    }
    let prefix = uri.path().trim_end_matches('/');
    let path: Uri = format!("{prefix}/v1/chat/completions").parse().unwrap();
    let body = request_body(&args);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let start = Instant::now();
        let warm_end = start + Duration::from_secs_f64(args.warmup);
        let plan = Arc::new(Plan {
            addr: authority.as_str().to_owned(),
            host: HeaderValue::from_str(authority.as_str()).unwrap(),
            uri: path,
            body,
            stream: args.stream,
            timeout: Duration::from_secs_f64(args.timeout),
            warm_end,
            end: warm_end + Duration::from_secs_f64(args.duration),
        });
        let workers: Vec<_> = (0..args.concurrency)
            .map(|_| tokio::spawn(worker(plan.clone())))
            .collect();
        let mut all = Stats::default();
        for w in workers {
            let s = w.await.expect("worker panicked");
            all.latency.extend_from_slice(&s.latency);
            all.ttft.extend_from_slice(&s.ttft);
            all.errors += s.errors;
        }
        println!("{}", report(&mut all, args.duration, args.stream));
    });
    ExitCode::SUCCESS
}

fn request_body(args: &Args) -> Bytes {
    let mut body = serde_json::json!({
        "model": args.model,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Write a haiku about the sea."}
        ],
        "temperature": 0,
    });
    if let Some(n) = args.max_tokens {
        body["max_tokens"] = n.into();
    }
    if args.stream {
        body["stream"] = true.into();
        body["stream_options"] = serde_json::json!({"include_usage": true});
    }
    Bytes::from(serde_json::to_vec(&body).unwrap())
}

async fn connect(addr: &str) -> std::io::Result<SendRequest<Full<Bytes>>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// The outcome of one request.
enum Outcome {
    /// 2xx, whole body read; the first-token time when one was seen.
    Ok(Option<Instant>),
    /// Non-2xx status; the connection is still usable.
    Status,
    /// Transport error or timeout; the connection is dropped.
    Broken,
}

async fn worker(plan: Arc<Plan>) -> Stats {
    let mut stats = Stats {
        latency: Vec::with_capacity(4096),
        ttft: Vec::with_capacity(if plan.stream { 4096 } else { 0 }),
        errors: 0,
    };
    let mut finder = TokenFinder::default();
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    while Instant::now() < plan.end {
        let sender = match conn.as_mut() {
            Some(s) => s,
            None => match connect(&plan.addr).await {
                Ok(s) => conn.insert(s),
                Err(_) => {
                    if Instant::now() >= plan.warm_end {
                        stats.errors += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if sender.ready().await.is_err() {
            conn = None;
            continue;
        }
        let mut req = Request::new(Full::new(plan.body.clone()));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = plan.uri.clone();
        let h = req.headers_mut();
        h.insert(HOST, plan.host.clone());
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if plan.stream {
            h.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        }

        let start = Instant::now();
        let outcome = tokio::time::timeout(
            plan.timeout,
            exchange(sender, req, plan.stream, &mut finder),
        )
        .await
        .unwrap_or(Outcome::Broken);
        let end = Instant::now();
        let counted = end >= plan.warm_end && end <= plan.end;
        match outcome {
            Outcome::Ok(first) if counted => {
                stats.latency.push(nanos(end - start));
                if let Some(t) = first {
                    stats.ttft.push(nanos(t - start));
                }
            }
            Outcome::Ok(_) => {}
            Outcome::Status => stats.errors += u64::from(counted),
            Outcome::Broken => {
                stats.errors += u64::from(counted);
                conn = None;
            }
        }
    }
    stats
}

async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
    stream: bool,
    finder: &mut TokenFinder,
) -> Outcome {
    let Ok(resp) = sender.send_request(req).await else {
        return Outcome::Broken;
    };
    let ok = resp.status().is_success();
    let mut body = resp.into_body();
    let mut first = None;
    finder.reset();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Outcome::Broken;
        };
        if stream && first.is_none() {
            if let Some(data) = frame.data_ref() {
                if finder.feed(data) {
                    first = Some(Instant::now());
                }
            }
        }
    }
    if ok {
        Outcome::Ok(first)
    } else {
        Outcome::Status
    }
}

const TOKEN_KEY: &[u8] = b"\"content\":\"";

/// Finds the first token event of a stream: `"content":"` followed by anything but `"`,
/// also when it is split across frames. Its buffer is reused from request to request.
#[derive(Default)]
struct TokenFinder {
    buf: Vec<u8>,
}

impl TokenFinder {
    fn reset(&mut self) {
        self.buf.clear();
    }

    fn feed(&mut self, data: &[u8]) -> bool {
        self.buf.extend_from_slice(data);
        let buf = &self.buf;
        let found = memchr::memmem::find_iter(buf, TOKEN_KEY).any(|p| {
            let next = p + TOKEN_KEY.len();
            next < buf.len() && buf[next] != b'"'
        });
        // Keep what may be the start of a key, or a key whose next byte has not come yet.
        let keep = self.buf.len().min(TOKEN_KEY.len());
        let cut = self.buf.len() - keep;
        self.buf.drain(..cut);
        found
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Nearest-rank percentile of sorted nanoseconds, in milliseconds.
fn percentile_ms(sorted: &[u64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    let v = sorted[rank.clamp(1, sorted.len()) - 1];
    Some((v as f64 / 1e3).round() / 1e3)
}

fn report(all: &mut Stats, duration: f64, stream: bool) -> serde_json::Value {
    all.latency.sort_unstable();
    all.ttft.sort_unstable();
    let n = all.latency.len();
    let rps = (n as f64 / duration * 10.0).round() / 10.0;
    let ttft = |p| {
        if stream {
            percentile_ms(&all.ttft, p)
        } else {
            None
        }
    };
    serde_json::json!({
        "requests": n,
        "errors": all.errors,
        "rps": rps,
        "p50_ms": percentile_ms(&all.latency, 0.50),
        "p99_ms": percentile_ms(&all.latency, 0.99),
        "ttft_p50_ms": ttft(0.50),
        "ttft_p99_ms": ttft(0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_finder_skips_the_role_chunk_and_handles_splits() {
        let role = br#"data: {"choices":[{"delta":{"role":"assistant","content":""}}]}"#;
        let tok = br#"data: {"choices":[{"delta":{"content":" hi"}}]}"#;
        let mut f = TokenFinder::default();
        assert!(!f.feed(role));
        assert!(f.feed(tok));
        for cut in 0..tok.len() {
            let mut f = TokenFinder::default();
            assert!(!f.feed(role));
            let a = f.feed(&tok[..cut]);
            let b = f.feed(&tok[cut..]);
            assert!(a || b, "cut at {cut}");
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).map(|i| i * 1_000_000).collect();
        assert_eq!(percentile_ms(&v, 0.5), Some(50.0));
        assert_eq!(percentile_ms(&v, 0.99), Some(99.0));
        assert_eq!(percentile_ms(&[], 0.5), None);
    }
}
