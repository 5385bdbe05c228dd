//! The server side of a WebSocket, after the HTTP upgrade: sends the text messages it is
//! given, answers pings and closes.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use super::frame::{read_frame, write_frame, Opcode};

/// What the reading half asks the writing half to send.
enum Control {
    Pong(Vec<u8>),
    Close(Vec<u8>),
}

/// Serves one upgraded connection: every message from `outgoing` goes out as a text frame
/// until the client closes, the connection fails, or `outgoing` ends (then a close frame,
/// code 1000, ends it).
pub async fn serve<S>(io: S, mut outgoing: mpsc::Receiver<String>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(io);
    let (control_tx, mut control) = mpsc::channel::<Control>(8);
    let reading = tokio::spawn(async move {
        loop {
            let frame = match read_frame(&mut reader).await {
                Ok(Some(frame)) => frame,
                Ok(None) | Err(_) => return,
            };
            let reply = match frame.opcode {
                Opcode::Ping => Control::Pong(frame.payload),
                Opcode::Close => Control::Close(frame.payload),
                _ => continue,
            };
            let close = matches!(reply, Control::Close(_));
            if control_tx.send(reply).await.is_err() || close {
                return;
            }
        }
    });
    loop {
        let sent = tokio::select! {
            message = outgoing.recv() => match message {
                Some(text) => write_frame(&mut writer, Opcode::Text, text.as_bytes(), None).await,
                None => {
                    let _ = write_frame(&mut writer, Opcode::Close, &1000u16.to_be_bytes(), None).await;
                    break;
                }
            },
            control = control.recv() => match control {
                Some(Control::Pong(payload)) => write_frame(&mut writer, Opcode::Pong, &payload, None).await,
                Some(Control::Close(payload)) => {
                    // Echo the status code, as RFC 6455 asks.
                    let code = payload.get(..2).unwrap_or(&[]);
                    let _ = write_frame(&mut writer, Opcode::Close, code, None).await;
                    break;
                }
                None => break,
            },
        };
        if sent.is_err() {
            break;
        }
    }
    reading.abort();
}
