//! A minimal WebSocket client for tests: connects over TCP (no TLS), does the RFC 6455
//! handshake, reads text messages and answers pings.
//!
//! ```no_run
//! # async fn demo(addr: std::net::SocketAddr) -> std::io::Result<()> {
//! use infergate_loadtest::sim::ws_client::WsClient;
//! let mut ws = WsClient::connect(addr, "/ws?clientId=me").await?;
//! while let Some(text) = ws.next_text().await? {
//!     println!("{text}");
//! }
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::base64;
use super::frame::{accept_key, read_frame, write_frame, Opcode};

/// Largest response head accepted during the handshake.
const MAX_HEAD: usize = 16 * 1024;

/// A connected WebSocket.
#[derive(Debug)]
pub struct WsClient {
    stream: BufReader<TcpStream>,
    closed: bool,
}

fn other(message: String) -> std::io::Error {
    std::io::Error::other(message)
}

impl WsClient {
    /// Connects to `addr` and upgrades `GET path` (with its query) to a WebSocket. Fails
    /// unless the server answers 101 with the right `Sec-WebSocket-Accept`.
    pub async fn connect(addr: SocketAddr, path: &str) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Self::handshake(stream, &addr.to_string(), path).await
    }

    /// Upgrades `GET path` on an open connection; `host` is the `Host` header's value.
    pub async fn handshake(stream: TcpStream, host: &str, path: &str) -> std::io::Result<Self> {
        let key = base64::encode(&rand::random::<[u8; 16]>());
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        let mut stream = BufReader::new(stream);
        stream.get_mut().write_all(request.as_bytes()).await?;
        let mut head = Vec::new();
        let mut read = 0;
        loop {
            let mut line = String::new();
            let n = stream.read_line(&mut line).await?;
            read += n;
            if n == 0 || read > MAX_HEAD {
                return Err(other(format!(
                    "WebSocket handshake with {host}{path}: the response head ended early or is over {MAX_HEAD} bytes"
                )));
            }
            let line = line.trim_end().to_owned();
            if line.is_empty() {
                break;
            }
            head.push(line);
        }
        let status = head.first().cloned().unwrap_or_default();
        if status.split_whitespace().nth(1) != Some("101") {
            return Err(other(format!(
                "WebSocket handshake with {host}{path} refused: `{status}`"
            )));
        }
        let expected = accept_key(&key);
        let accepted = head.iter().skip(1).any(|line| {
            line.split_once(':').is_some_and(|(name, value)| {
                name.trim().eq_ignore_ascii_case("sec-websocket-accept") && value.trim() == expected
            })
        });
        if !accepted {
            return Err(other(format!(
                "WebSocket handshake with {host}{path}: missing or wrong Sec-WebSocket-Accept"
            )));
        }
        Ok(Self {
            stream,
            closed: false,
        })
    }

    /// The next text message; pings are answered and binary messages skipped on the way.
    /// `None` once the server closes (its close frame is answered) or the stream ends.
    pub async fn next_text(&mut self) -> std::io::Result<Option<String>> {
        loop {
            if self.closed {
                return Ok(None);
            }
            let Some(frame) = read_frame(&mut self.stream).await? else {
                self.closed = true;
                return Ok(None);
            };
            match frame.opcode {
                Opcode::Text => {
                    return String::from_utf8(frame.payload)
                        .map(Some)
                        .map_err(|err| other(format!("WebSocket text is not UTF-8: {err}")));
                }
                Opcode::Ping => self.send(Opcode::Pong, &frame.payload).await?,
                Opcode::Close => {
                    self.closed = true;
                    // The reply is a courtesy: the server may already be gone.
                    let _ = self.send(Opcode::Close, &frame.payload).await;
                    return Ok(None);
                }
                Opcode::Binary | Opcode::Continuation | Opcode::Pong => {}
            }
        }
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) -> std::io::Result<()> {
        self.send(Opcode::Text, text.as_bytes()).await
    }

    /// Sends a ping; its pong is skipped by [`WsClient::next_text`].
    pub async fn ping(&mut self, payload: &[u8]) -> std::io::Result<()> {
        self.send(Opcode::Ping, payload).await
    }

    /// Sends a close frame (code 1000); read on with [`WsClient::next_text`] to see the
    /// server's close.
    pub async fn close(&mut self) -> std::io::Result<()> {
        self.send(Opcode::Close, &1000u16.to_be_bytes()).await
    }

    async fn send(&mut self, opcode: Opcode, payload: &[u8]) -> std::io::Result<()> {
        let mask = rand::random::<[u8; 4]>();
        write_frame(self.stream.get_mut(), opcode, payload, Some(mask)).await
    }
}
