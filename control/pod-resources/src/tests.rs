//! The client against the fake server, over a real unix socket.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::fake::{gpu_pod, FakeServer, FakeState};
use crate::{grpc, Client, ErrorKind};

fn socket(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "infergate-podresources-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("kubelet.sock")
}

#[tokio::test]
async fn list_reads_what_the_fake_serves_and_follows_its_changes() {
    let fake = FakeServer::start(socket("list")).await.unwrap();
    let client = Client::new(fake.path(), Duration::from_secs(5));
    assert!(client.list().await.unwrap().is_empty());
    let pods = vec![
        gpu_pod("models", "llama-0", "vllm", &["GPU-aaaa", "GPU-bbbb"]),
        gpu_pod("models", "qwen-0", "vllm", &["MIG-cccc"]),
    ];
    fake.set_pods(pods.clone());
    assert_eq!(client.list().await.unwrap(), pods);
    fake.set_pods(pods[1..].to_vec());
    assert_eq!(client.list().await.unwrap(), pods[1..].to_vec());
    assert_eq!(fake.requests(), 3);
}

#[tokio::test]
async fn a_grpc_status_is_an_error_with_its_message() {
    let fake = FakeServer::start(socket("status")).await.unwrap();
    fake.set_pods(vec![gpu_pod("a", "b", "c", &["GPU-1"])]);
    fake.fail_with(grpc::code::UNAVAILABLE, "kubelet: 100% busy");
    let client = Client::new(fake.path(), Duration::from_secs(5));
    let err = client.list().await.unwrap_err();
    match &err.kind {
        ErrorKind::Status { code, message } => {
            assert_eq!(*code, 14);
            assert_eq!(message, "kubelet: 100% busy");
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("kubelet.sock") && text.contains("UNAVAILABLE"),
        "{text}"
    );
    fake.set_pods(vec![]);
    assert!(client.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_missing_socket_is_a_connect_error_naming_it() {
    let path = socket("missing").with_file_name("absent.sock");
    let err = Client::new(&path, Duration::from_secs(5))
        .list()
        .await
        .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Connect(_)), "{err:?}");
    assert!(err.to_string().contains("absent.sock"), "{err}");
}

#[tokio::test]
async fn a_slow_answer_times_out() {
    let fake = FakeServer::start(socket("slow")).await.unwrap();
    fake.set_state(FakeState {
        delay_ms: 5_000,
        ..FakeState::default()
    });
    let started = tokio::time::Instant::now();
    let err = Client::new(fake.path(), Duration::from_millis(200))
        .list()
        .await
        .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn malformed_answers_are_errors() {
    let fake = FakeServer::start(socket("malformed")).await.unwrap();
    let client = Client::new(fake.path(), Duration::from_secs(5));
    type Check = fn(&ErrorKind) -> bool;
    let cases: Vec<(Vec<u8>, Check)> = vec![
        // Shorter than its prefix says.
        (vec![0, 0, 0, 0, 9, 1, 2], |k| {
            matches!(k, ErrorKind::Protocol(_))
        }),
        // Compressed although not asked for.
        (vec![1, 0, 0, 0, 0], |k| matches!(k, ErrorKind::Protocol(_))),
        // A well-framed message that is not a ListPodResourcesResponse.
        (grpc::frame(&[0x0a, 0x05, 0x00]).to_vec(), |k| {
            matches!(k, ErrorKind::Decode(_))
        }),
        // No message at all.
        (vec![], |k| matches!(k, ErrorKind::Protocol(_))),
    ];
    for (body, want) in cases {
        fake.set_state(FakeState {
            raw_body: Some(body.clone()),
            ..FakeState::default()
        });
        let err = client.list().await.unwrap_err();
        assert!(want(&err.kind), "{body:?}: {err}");
    }
}

#[tokio::test]
async fn a_server_that_is_not_grpc_is_refused() {
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let path = socket("plain");
    let listener = crate::fake::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                    let status = if req.uri().path() == crate::LIST_PATH {
                        http::StatusCode::OK
                    } else {
                        http::StatusCode::NOT_FOUND
                    };
                    let mut r = http::Response::new(Full::new(bytes::Bytes::from("hello")));
                    *r.status_mut() = status;
                    Ok::<_, std::convert::Infallible>(r)
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let err = Client::new(&path, Duration::from_secs(5))
        .list()
        .await
        .unwrap_err();
    assert!(
        matches!(&err.kind, ErrorKind::Protocol(m) if m.contains("content-type")),
        "{err}"
    );
    server.abort();
}
