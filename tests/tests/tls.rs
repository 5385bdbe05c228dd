//! TLS with the real binaries: a gateway terminating TLS (ALPN h2 and http/1.1, certificate
//! reloaded when its files change) behind another gateway that reaches it over `https://` with
//! a CA bundle. Certificates are made at test time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use infergate_e2e::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Ca {
    fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        Ca(CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap())
    }

    /// (cert PEM, key PEM) for localhost and 127.0.0.1.
    fn leaf(&self) -> (String, String) {
        let mut p = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &*self.0).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn der(&self) -> CertificateDer<'static> {
        self.0.der().clone()
    }
}

fn client(ca: &Ca, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.der()).unwrap();
    let mut cfg =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    cfg.resumption = rustls::client::Resumption::disabled();
    Arc::new(cfg)
}

/// GET /v1/models over TLS; returns the status and the HTTP version used.
async fn tls_get(
    addr: std::net::SocketAddr,
    cfg: Arc<ClientConfig>,
) -> Result<(StatusCode, http::Version), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let tls = TlsConnector::from(cfg)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let req = http::Request::get(format!("https://localhost:{}/v1/models", addr.port()))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = if h2 {
        let (mut s, c) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(c);
        s.send_request(req).await.map_err(|e| e.to_string())?
    } else {
        let (mut s, c) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(c);
        s.send_request(req).await.map_err(|e| e.to_string())?
    };
    let (parts, body) = resp.into_parts();
    let _ = body.collect().await;
    Ok((parts.status, parts.version))
}

#[tokio::test]
async fn tls_termination_https_upstreams_and_certificate_reload() {
    let dir = temp_path("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let ca1 = Ca::new("ca-one");
    let (cert, key) = ca1.leaf();
    let cert_file = dir.join("tls.crt");
    let key_file = dir.join("tls.key");
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca1.0.pem()).unwrap();

    let sim = Sim::start(&["--ttft-ms", "5", "--itl-ms", "1"]).await;
    // Gateway B terminates TLS.
    let b_cfg = Gateway::config(&[sim.url()], "").replace(
        "data: { address: \"127.0.0.1:0\" }",
        &format!(
            "data: {{ address: \"127.0.0.1:0\", tls: {{ cert_file: \"{}\", key_file: \"{}\" }} }}",
            cert_file.display(),
            key_file.display()
        ),
    );
    let b = Gateway::start(&b_cfg).await;

    // ALPN: h2 and http/1.1.
    assert_eq!(
        tls_get(b.data, client(&ca1, &[b"h2"])).await.unwrap(),
        (StatusCode::OK, http::Version::HTTP_2)
    );
    assert_eq!(
        tls_get(b.data, client(&ca1, &[b"http/1.1"])).await.unwrap(),
        (StatusCode::OK, http::Version::HTTP_11)
    );

    // Gateway A reaches B over https with the CA bundle; a backend without it cannot verify.
    let a_cfg = format!(
        "listeners:\n  data: {{ address: \"127.0.0.1:0\" }}\n  admin: {{ address: \"127.0.0.1:0\" }}\n\
         backends:\n  - name: trusted\n    endpoints: [{{ url: \"https://localhost:{port}\" }}]\n    tls: {{ ca_file: \"{ca}\" }}\n\
         \x20 - name: untrusted\n    endpoints: [{{ url: \"https://127.0.0.1:{port}\" }}]\n    retry: {{ max_attempts: 1 }}\n\
         models:\n  - {{ name: demo, backend: trusted }}\n  - {{ name: other, backend: untrusted }}\n",
        port = b.data.port(),
        ca = ca_file.display()
    );
    let a = Gateway::start(&a_cfg).await;
    let body = r#"{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"stream":true}"#;
    assert_eq!(stream_once(a.data, body).await, StreamResult::Complete);
    let r = post(
        a.data,
        "/v1/chat/completions",
        &body.replace("\"demo\"", "\"other\""),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("certificate"), "{msg}");

    // Replace B's certificate with one from another CA: new handshakes use it.
    let ca2 = Ca::new("ca-two");
    let (cert2, key2) = ca2.leaf();
    std::fs::write(dir.join("new.crt"), cert2).unwrap();
    std::fs::write(dir.join("new.key"), key2).unwrap();
    std::fs::rename(dir.join("new.key"), &key_file).unwrap();
    std::fs::rename(dir.join("new.crt"), &cert_file).unwrap();
    wait_for(
        "new certificate never served",
        Duration::from_secs(10),
        || async { tls_get(b.data, client(&ca2, &[b"h2"])).await.map(|_| ()) },
    )
    .await;
    assert!(tls_get(b.data, client(&ca1, &[b"h2"])).await.is_err());
    // A bad key file keeps the current certificate: once the gateway has tried it and said so.
    std::fs::write(&key_file, "not a key").unwrap();
    b.wait_log("TLS certificate reload failed", Duration::from_secs(10))
        .await;
    assert!(tls_get(b.data, client(&ca2, &[b"http/1.1"])).await.is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}
