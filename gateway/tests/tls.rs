#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! TLS termination (ALPN, versions, hot reload) and the upstream connector (CA bundle, system
//! roots, mutual TLS), over real sockets on 127.0.0.1 with certificates made by rcgen at test
//! time in a temporary directory.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use infergate_config::{ServerTls, UpstreamTls};
use infergate_gateway::tls::{upstream_connector, TlsError, TlsTerminator};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, ProtocolVersion, RootCertStore, ServerConfig, SupportedProtocolVersion,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::{client::TlsStream, TlsAcceptor, TlsConnector};

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "infergate-tls-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_owned()
    }

    /// Writes `name` by writing a sibling and renaming it over, as certificate tools do.
    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.path(name);
        let tmp = self.path(&format!(".{name}.tmp"));
        std::fs::write(&tmp, contents).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A server certificate for "localhost" and 127.0.0.1.
    fn server_leaf(&self, serial: u64) -> Leaf {
        self.leaf(serial, ExtendedKeyUsagePurpose::ServerAuth)
    }

    fn client_leaf(&self, serial: u64) -> Leaf {
        self.leaf(serial, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, serial: u64, eku: ExtendedKeyUsagePurpose) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.serial_number = Some(serial.into());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![eku];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &*self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Leaf {
    fn write(&self, dir: &TempDir, prefix: &str) -> (String, String) {
        (
            dir.write(&format!("{prefix}cert.pem"), &self.cert_pem),
            dir.write(&format!("{prefix}key.pem"), &self.key_pem),
        )
    }

    fn server_tls(&self, dir: &TempDir) -> ServerTls {
        let (cert_file, key_file) = self.write(dir, "server-");
        ServerTls {
            cert_file,
            key_file,
        }
    }

    fn key_der(&self) -> PrivateKeyDer<'static> {
        use rustls::pki_types::pem::PemObject;
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

// ---------------------------------------------------------------------------------------------
// Servers and clients

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from(format!(
        "{:?}",
        req.version()
    )))))
}

/// Serves `hello` over TLS with `acceptor` (HTTP/1.1 and HTTP/2) until aborted.
async fn serve_tls(acceptor: TlsAcceptor) -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service_fn(hello))
                    .await;
            });
        }
    });
    (port, task)
}

/// Serves `hello` over plain HTTP/1.1 until aborted.
async fn serve_plain() -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service_fn(hello))
                    .await;
            });
        }
    });
    (port, task)
}

fn client_config(
    cas: &[CertificateDer<'static>],
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots.add(ca.clone()).unwrap();
    }
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // A resumed session reports the certificate of the session it resumes: every connection
    // here does a full handshake, so it sees the certificate served now.
    cfg.resumption = rustls::client::Resumption::disabled();
    Arc::new(cfg)
}

async fn tls_connect(port: u16, cfg: Arc<ClientConfig>) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    TlsConnector::from(cfg)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

fn leaf_of(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// An HTTP/1.1 connection over `tls`; the connection task runs in the background.
async fn h1(tls: TlsStream<TcpStream>) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

async fn h1_get(send: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>) -> String {
    send.ready().await.unwrap();
    let req = Request::get("/")
        .header("host", "localhost")
        .body(Empty::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), Version::HTTP_11);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// One GET over a fresh TLS connection, returning the leaf it presented.
async fn leaf_seen(port: u16, cfg: &Arc<ClientConfig>) -> CertificateDer<'static> {
    let tls = tls_connect(port, cfg.clone()).await;
    let leaf = leaf_of(&tls);
    let mut send = h1(tls).await;
    assert_eq!(h1_get(&mut send).await, "HTTP/1.1");
    leaf
}

const BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// How long the test watches an aborted certificate watcher (polling every 20 ms) for a reload
/// that must not happen: ten of its intervals.
const ABORTED_WATCHER_PERIOD: Duration = Duration::from_millis(200);

/// Checks `cond` every 10 ms until it holds; fails after 10 s with `what`.
async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until a file written now gets a later modification time than `path`.
async fn wait_mtime_after(dir: &TempDir, path: &str) {
    let mtime = |p: &str| std::fs::metadata(p).unwrap().modified().unwrap();
    let current = mtime(path);
    wait_until("the file system clock never moved", || async {
        mtime(&dir.write(".mtime-probe", "")) > current
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Termination

#[tokio::test]
async fn alpn_h2_and_http11() {
    let dir = TempDir::new();
    let ca = Ca::new("test CA");
    let leaf = ca.server_leaf(1);
    let term = TlsTerminator::load(&leaf.server_tls(&dir)).unwrap();
    let (port, server) = serve_tls(term.acceptor()).await;

    // ALPN h2 (and http/1.1 as a fallback): the server picks h2; HTTP/2 on the wire.
    let cfg = client_config(&[ca.der()], BOTH, &[b"h2", b"http/1.1"]);
    let tls = tls_connect(port, cfg).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(leaf_of(&tls), leaf.der);
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get("https://localhost/")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), Version::HTTP_2);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"HTTP/2.0");

    // ALPN http/1.1 only: HTTP/1.1.
    let cfg = client_config(&[ca.der()], BOTH, &[b"http/1.1"]);
    let tls = tls_connect(port, cfg).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut send = h1(tls).await;
    assert_eq!(h1_get(&mut send).await, "HTTP/1.1");

    // No ALPN at all: still HTTP/1.1.
    let cfg = client_config(&[ca.der()], BOTH, &[]);
    let tls = tls_connect(port, cfg).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), None);
    let mut send = h1(tls).await;
    assert_eq!(h1_get(&mut send).await, "HTTP/1.1");

    server.abort();
}

#[tokio::test]
async fn tls12_and_tls13_clients_connect() {
    let dir = TempDir::new();
    let ca = Ca::new("test CA");
    let term = TlsTerminator::load(&ca.server_leaf(1).server_tls(&dir)).unwrap();
    let (port, server) = serve_tls(term.acceptor()).await;

    for (version, expect) in [
        (&rustls::version::TLS12, ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, ProtocolVersion::TLSv1_3),
    ] {
        let cfg = client_config(&[ca.der()], &[version], &[b"http/1.1"]);
        let tls = tls_connect(port, cfg).await;
        assert_eq!(tls.get_ref().1.protocol_version(), Some(expect));
        let mut send = h1(tls).await;
        assert_eq!(h1_get(&mut send).await, "HTTP/1.1");
    }
    server.abort();
}

#[tokio::test]
async fn certificate_hot_reload() {
    let dir = TempDir::new();
    let ca1 = Ca::new("CA one");
    let ca2 = Ca::new("CA two");
    let a = ca1.server_leaf(1);
    let cfg_files = a.server_tls(&dir);
    let term = TlsTerminator::load(&cfg_files).unwrap();
    let (port, server) = serve_tls(term.acceptor()).await;
    let client = client_config(&[ca1.der(), ca2.der()], BOTH, &[b"http/1.1"]);

    // Unchanged files: nothing to do.
    assert!(!term.reload_if_changed().unwrap());

    // Certificate A, and a connection that stays open across the reload.
    let tls = tls_connect(port, client.clone()).await;
    assert_eq!(leaf_of(&tls), a.der);
    let mut open = h1(tls).await;
    assert_eq!(h1_get(&mut open).await, "HTTP/1.1");

    // Certificate B from another CA replaces A.
    let b = ca2.server_leaf(2);
    b.write(&dir, "server-");
    assert!(term.reload_if_changed().unwrap());
    assert!(!term.reload_if_changed().unwrap());
    assert_eq!(leaf_seen(port, &client).await, b.der);
    // The connection made under A keeps working.
    assert_eq!(h1_get(&mut open).await, "HTTP/1.1");

    // A key that does not match the certificate: an error naming the key file; B still serves.
    dir.write("server-key.pem", &ca1.server_leaf(3).key_pem);
    let err = term.reload_if_changed().unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&cfg_files.key_file), "{err}");
    assert_eq!(leaf_seen(port, &client).await, b.der);
    // Reported once; unchanged since then.
    assert!(!term.reload_if_changed().unwrap());

    // A key file without a key: the same.
    dir.write("server-key.pem", "not a key\n");
    let err = term.reload_if_changed().unwrap_err();
    assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err}");
    assert!(err.to_string().contains(&cfg_files.key_file), "{err}");
    assert_eq!(leaf_seen(port, &client).await, b.der);

    // The right key again: B's pair is back (a fresh load, so Ok(true)).
    dir.write("server-key.pem", &b.key_pem);
    assert!(term.reload_if_changed().unwrap());
    assert_eq!(leaf_seen(port, &client).await, b.der);

    // In place overwrite (no rename) of both files with a new serial from CA1, once a write
    // gets a later modification time than the current files (file system clocks can be coarse).
    wait_mtime_after(&dir, &cfg_files.cert_file).await;
    let c = ca1.server_leaf(4);
    std::fs::write(&cfg_files.cert_file, &c.cert_pem).unwrap();
    std::fs::write(&cfg_files.key_file, &c.key_pem).unwrap();
    assert!(term.reload_if_changed().unwrap());
    assert_eq!(leaf_seen(port, &client).await, c.der);
    assert_eq!(h1_get(&mut open).await, "HTTP/1.1");

    server.abort();
}

#[tokio::test]
async fn watcher_reloads_by_itself() {
    let dir = TempDir::new();
    let ca = Ca::new("test CA");
    let a = ca.server_leaf(1);
    let term = Arc::new(TlsTerminator::load(&a.server_tls(&dir)).unwrap());
    let (port, server) = serve_tls(term.acceptor()).await;
    let client = client_config(&[ca.der()], BOTH, &[b"http/1.1"]);
    let watcher = term.spawn_watcher(Duration::from_millis(20));
    assert_eq!(leaf_seen(port, &client).await, a.der);

    let b = ca.server_leaf(2);
    b.write(&dir, "server-");
    wait_until(
        "the watcher did not install the new certificate",
        || async { leaf_seen(port, &client).await == b.der },
    )
    .await;

    // Once aborted, it no longer reloads: after ten of its polling intervals, the new files are
    // still waiting to be loaded.
    watcher.abort();
    let _ = watcher.await;
    let c = ca.server_leaf(3);
    c.write(&dir, "server-");
    tokio::time::sleep(ABORTED_WATCHER_PERIOD).await;
    assert_eq!(leaf_seen(port, &client).await, b.der);
    assert!(term.reload_if_changed().unwrap(), "the files were reloaded");
    assert_eq!(leaf_seen(port, &client).await, c.der);
    server.abort();
}

// ---------------------------------------------------------------------------------------------
// Upstream

fn http_connector() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    http
}

fn upstream_client(
    tls: &UpstreamTls,
) -> Client<infergate_gateway::tls::UpstreamConnector, Empty<Bytes>> {
    let connector = upstream_connector(tls, http_connector()).unwrap();
    Client::builder(TokioExecutor::new()).build(connector)
}

async fn get(
    client: &Client<infergate_gateway::tls::UpstreamConnector, Empty<Bytes>>,
    url: &str,
) -> Result<String, String> {
    match client.get(url.parse().unwrap()).await {
        Ok(resp) => {
            assert_eq!(resp.status(), StatusCode::OK);
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            Ok(String::from_utf8(body.to_vec()).unwrap())
        }
        Err(e) => Err(error_chain(&e)),
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

#[tokio::test]
async fn upstream_with_ca_file_and_system_roots() {
    let dir = TempDir::new();
    let ca = Ca::new("upstream CA");
    let term = TlsTerminator::load(&ca.server_leaf(1).server_tls(&dir)).unwrap();
    let (port, server) = serve_tls(term.acceptor()).await;
    let (plain_port, plain) = serve_plain().await;
    let https = format!("https://127.0.0.1:{port}/");
    let localhost = format!("https://localhost:{port}/");
    let http = format!("http://127.0.0.1:{plain_port}/");

    // Only the CA bundle: verifies (by IP and by name), and offers http/1.1 only.
    let ca_tls = UpstreamTls {
        ca_file: Some(dir.write("ca.pem", &ca.pem())),
        ..UpstreamTls::default()
    };
    let client = upstream_client(&ca_tls);
    assert_eq!(get(&client, &https).await.unwrap(), "HTTP/1.1");
    assert_eq!(get(&client, &localhost).await.unwrap(), "HTTP/1.1");
    assert_eq!(get(&client, &http).await.unwrap(), "HTTP/1.1");

    // System roots: the test CA is not among them.
    let client = upstream_client(&UpstreamTls::default());
    let err = get(&client, &https).await.unwrap_err();
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );
    // Plain http is unaffected, whatever the system's roots.
    assert_eq!(get(&client, &http).await.unwrap(), "HTTP/1.1");

    // A CA bundle from another CA: rejected too.
    let other = Ca::new("other CA");
    let client = upstream_client(&UpstreamTls {
        ca_file: Some(dir.write("other-ca.pem", &other.pem())),
        ..UpstreamTls::default()
    });
    let err = get(&client, &https).await.unwrap_err();
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );

    server.abort();
    plain.abort();
}

#[tokio::test]
async fn upstream_mutual_tls() {
    let dir = TempDir::new();
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let server_leaf = server_ca.server_leaf(1);

    // A server that requires a client certificate from client_ca.
    let mut client_roots = RootCertStore::empty();
    client_roots.add(client_ca.der()).unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(client_roots), provider())
        .build()
        .unwrap();
    let mut server_cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(BOTH)
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server_leaf.der.clone()], server_leaf.key_der())
        .unwrap();
    server_cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let (port, server) = serve_tls(TlsAcceptor::from(Arc::new(server_cfg))).await;
    let url = format!("https://127.0.0.1:{port}/");
    let ca_file = Some(dir.write("server-ca.pem", &server_ca.pem()));

    // With the client certificate: accepted.
    let (cert_file, key_file) = client_ca.client_leaf(7).write(&dir, "client-");
    let client = upstream_client(&UpstreamTls {
        ca_file: ca_file.clone(),
        cert_file: Some(cert_file),
        key_file: Some(key_file),
    });
    assert_eq!(get(&client, &url).await.unwrap(), "HTTP/1.1");

    // Without: refused.
    let client = upstream_client(&UpstreamTls {
        ca_file: ca_file.clone(),
        ..UpstreamTls::default()
    });
    let err = get(&client, &url).await.unwrap_err();
    assert!(err.contains("CertificateRequired"), "{err}");

    // With a certificate from a CA the server does not trust: refused.
    let stranger = Ca::new("stranger CA");
    let (cert_file, key_file) = stranger.client_leaf(8).write(&dir, "stranger-");
    let client = upstream_client(&UpstreamTls {
        ca_file,
        cert_file: Some(cert_file),
        key_file: Some(key_file),
    });
    let err = get(&client, &url).await.unwrap_err();
    assert!(err.contains("UnknownCA"), "{err}");

    server.abort();
}

// ---------------------------------------------------------------------------------------------
// Errors

fn load_err(cert_file: &str, key_file: &str) -> TlsError {
    TlsTerminator::load(&ServerTls {
        cert_file: cert_file.to_owned(),
        key_file: key_file.to_owned(),
    })
    .unwrap_err()
}

fn upstream_err(tls: UpstreamTls) -> TlsError {
    upstream_connector(&tls, http_connector()).unwrap_err()
}

#[test]
fn errors_name_the_file_and_the_reason() {
    let dir = TempDir::new();
    let ca = Ca::new("test CA");
    let leaf = ca.server_leaf(1);
    let (cert, key) = leaf.write(&dir, "");
    let missing = dir.path("missing.pem");
    let empty = dir.write("empty.pem", "");
    let bad_pem = dir.write(
        "bad.pem",
        "-----BEGIN CERTIFICATE-----\n!!!! not base64 !!!!\n-----END CERTIFICATE-----\n",
    );
    let bad_der = dir.write(
        "bad-der.pem",
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
    );
    let other_key = dir.write("other-key.pem", &ca.server_leaf(2).key_pem);

    let check = |err: TlsError, path: &str, reason: &str| {
        let msg = err.to_string();
        assert!(msg.contains(path), "{msg:?} should name {path}");
        assert!(msg.contains(reason), "{msg:?} should say {reason:?}");
    };

    // Termination.
    check(
        load_err(&missing, &key),
        &missing,
        "cannot read certificate file",
    );
    check(load_err(&cert, &missing), &missing, "cannot read key file");
    check(load_err(&key, &key), &key, "holds no certificate");
    check(load_err(&empty, &key), &empty, "holds no certificate");
    check(load_err(&cert, &cert), &cert, "holds no private key");
    check(load_err(&cert, &empty), &empty, "holds no private key");
    check(load_err(&bad_pem, &key), &bad_pem, "is not valid PEM");
    check(load_err(&bad_der, &key), &bad_der, "cannot be used");
    let err = load_err(&cert, &other_key);
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    check(err, &other_key, "does not match the certificate in");
    let err = load_err(&missing, &key);
    assert!(
        err.to_string().contains("No such file or directory"),
        "{err}"
    );
    let dir_path = dir.0.to_str().unwrap().to_owned();
    check(
        load_err(&dir_path, &key),
        &dir_path,
        "cannot read certificate file",
    );

    // Upstream.
    check(
        upstream_err(UpstreamTls {
            ca_file: Some(missing.clone()),
            ..UpstreamTls::default()
        }),
        &missing,
        "cannot read CA file",
    );
    check(
        upstream_err(UpstreamTls {
            ca_file: Some(key.clone()),
            ..UpstreamTls::default()
        }),
        &key,
        "CA file",
    );
    check(
        upstream_err(UpstreamTls {
            ca_file: Some(bad_der.clone()),
            ..UpstreamTls::default()
        }),
        &bad_der,
        "CA file",
    );
    check(
        upstream_err(UpstreamTls {
            cert_file: Some(cert.clone()),
            key_file: Some(other_key.clone()),
            ..UpstreamTls::default()
        }),
        &other_key,
        "does not match",
    );
    check(
        upstream_err(UpstreamTls {
            cert_file: Some(cert.clone()),
            key_file: Some(missing.clone()),
            ..UpstreamTls::default()
        }),
        &missing,
        "cannot read key file",
    );
    check(
        upstream_err(UpstreamTls {
            cert_file: Some(cert.clone()),
            ..UpstreamTls::default()
        }),
        &cert,
        "needs both cert_file and key_file",
    );
    check(
        upstream_err(UpstreamTls {
            key_file: Some(key.clone()),
            ..UpstreamTls::default()
        }),
        &key,
        "needs both cert_file and key_file",
    );

    // A good pair and CA build.
    TlsTerminator::load(&ServerTls {
        cert_file: cert.clone(),
        key_file: key.clone(),
    })
    .unwrap();
    upstream_connector(
        &UpstreamTls {
            ca_file: Some(dir.write("ca.pem", &ca.pem())),
            cert_file: Some(cert),
            key_file: Some(key),
        },
        http_connector(),
    )
    .unwrap();
}
