//! Why a `List` call failed, with the socket it was made on.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::proto::DecodeError;

/// A failed `List` call on `socket`.
#[derive(Debug)]
pub struct Error {
    pub socket: PathBuf,
    pub kind: ErrorKind,
}

#[derive(Debug)]
pub enum ErrorKind {
    /// The socket cannot be reached (missing, refused, no permission).
    Connect(std::io::Error),
    /// HTTP/2 failed (handshake, stream reset, connection lost).
    Http(String),
    /// No complete answer within the call's timeout.
    Timeout(Duration),
    /// An HTTP status other than 200.
    HttpStatus(http::StatusCode),
    /// The server answered with a non-zero gRPC status.
    Status { code: u32, message: String },
    /// The answer is not a well-formed gRPC response.
    Protocol(String),
    /// The message cannot be read.
    Decode(DecodeError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PodResources List on {}: ", self.socket.display())?;
        match &self.kind {
            ErrorKind::Connect(e) => write!(f, "cannot connect: {e}"),
            ErrorKind::Http(e) => write!(f, "HTTP/2: {e}"),
            ErrorKind::Timeout(t) => write!(f, "no answer within {t:?}"),
            ErrorKind::HttpStatus(s) => write!(f, "HTTP status {s}"),
            ErrorKind::Status { code, message } => write!(
                f,
                "gRPC status {code} ({}): {message}",
                crate::grpc::code_name(*code)
            ),
            ErrorKind::Protocol(e) => write!(f, "not a gRPC response: {e}"),
            ErrorKind::Decode(e) => write!(f, "cannot read the response: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Connect(e) => Some(e),
            ErrorKind::Decode(e) => Some(e),
            _ => None,
        }
    }
}
