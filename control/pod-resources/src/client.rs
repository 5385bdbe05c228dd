//! The `List` call over the kubelet's unix socket: one HTTP/2 connection per call (the kubelet
//! may restart between two polls), bounded by a timeout and by the 16 MiB message limit.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::UnixStream;

use crate::error::{Error, ErrorKind};
use crate::grpc;
use crate::proto::{self, PodResources, MAX_MESSAGE};

/// Where the kubelet serves the PodResources API.
pub const DEFAULT_SOCKET: &str = "/var/lib/kubelet/pod-resources/kubelet.sock";

/// The gRPC method: service `v1.PodResourcesLister`, method `List`.
pub const LIST_PATH: &str = "/v1.PodResourcesLister/List";

/// A PodResources client for one socket.
#[derive(Clone, Debug)]
pub struct Client {
    socket: PathBuf,
    timeout: Duration,
}

impl Client {
    /// A client of `socket` whose calls end after `timeout`, connecting included.
    pub fn new(socket: impl Into<PathBuf>, timeout: Duration) -> Self {
        Client {
            socket: socket.into(),
            timeout,
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Every pod the kubelet knows, with the devices each container holds.
    pub async fn list(&self) -> Result<Vec<PodResources>, Error> {
        let kind = match tokio::time::timeout(self.timeout, self.call()).await {
            Ok(Ok(pods)) => return Ok(pods),
            Ok(Err(kind)) => kind,
            Err(_) => ErrorKind::Timeout(self.timeout),
        };
        Err(Error {
            socket: self.socket.clone(),
            kind,
        })
    }

    async fn call(&self) -> Result<Vec<PodResources>, ErrorKind> {
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(ErrorKind::Connect)?;
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .map_err(|e| ErrorKind::Http(e.to_string()))?;
        // The connection lives as long as this call: aborted when the call ends or times out.
        let conn = AbortOnDrop(tokio::spawn(conn));
        let req = Request::builder()
            .method(Method::POST)
            // gRPC clients name a unix socket's authority "localhost".
            .uri(format!("http://localhost{LIST_PATH}"))
            .header(header::CONTENT_TYPE, grpc::CONTENT_TYPE)
            .header(header::TE, "trailers")
            .header(header::USER_AGENT, "infergate-podresources")
            .body(Full::new(grpc::frame(&proto::encode_list_request())))
            .map_err(|e| ErrorKind::Protocol(e.to_string()))?;
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| ErrorKind::Http(e.to_string()))?;
        let (parts, body) = resp.into_parts();
        if parts.status != StatusCode::OK {
            return Err(ErrorKind::HttpStatus(parts.status));
        }
        // A trailers-only response (the usual form of an error) has its status in the headers.
        if let Some(status) = grpc::status(&parts.headers) {
            let status = status.map_err(ErrorKind::Protocol)?;
            if status.code != grpc::code::OK {
                return Err(ErrorKind::Status {
                    code: status.code,
                    message: status.message,
                });
            }
        }
        let content_type = parts.headers.get(header::CONTENT_TYPE);
        if !content_type.is_some_and(is_grpc) {
            return Err(ErrorKind::Protocol(format!(
                "content-type {content_type:?}, not {}",
                grpc::CONTENT_TYPE
            )));
        }
        let collected = Limited::new(body, MAX_MESSAGE + 5)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    ErrorKind::Protocol(format!("the body is over {} bytes", MAX_MESSAGE + 5))
                } else {
                    ErrorKind::Http(e.to_string())
                }
            })?;
        let status = collected
            .trailers()
            .and_then(grpc::status)
            .or_else(|| grpc::status(&parts.headers))
            .ok_or_else(|| ErrorKind::Protocol("no grpc-status in the trailers".into()))?
            .map_err(ErrorKind::Protocol)?;
        if status.code != grpc::code::OK {
            return Err(ErrorKind::Status {
                code: status.code,
                message: status.message,
            });
        }
        let body: Bytes = collected.to_bytes();
        let message = grpc::unframe(&body).map_err(ErrorKind::Protocol)?;
        let pods = proto::decode_list_response(message).map_err(ErrorKind::Decode)?;
        drop(conn);
        Ok(pods)
    }
}

/// `application/grpc`, alone or with a suffix (`application/grpc+proto`).
fn is_grpc(v: &HeaderValue) -> bool {
    v.to_str().is_ok_and(|s| {
        s.strip_prefix(grpc::CONTENT_TYPE)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('+') || rest.starts_with(';'))
    })
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
