//! TLS: termination on the data listener, with the certificate re-read when its files change,
//! and the connector that upstream clients use for `http://` and `https://` endpoints.
//!
//! Both sides use rustls with the *ring* provider, TLS 1.2 and 1.3.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use hyper_util::client::legacy::connect::HttpConnector;
use infergate_config::{ServerTls, UpstreamTls};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    ClientConfig, InconsistentKeys, RootCertStore, ServerConfig, SupportedProtocolVersion,
};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// TLS 1.3 first, then 1.2.
static VERSIONS: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Why a TLS configuration could not be built from its files. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `what` is "certificate", "key" or "CA".
    #[error("cannot read {what} file {path}: {source}")]
    Read {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{what} file {path} is not valid PEM: {source}")]
    Pem {
        what: &'static str,
        path: String,
        source: pem::Error,
    },
    /// `what` is "certificate" or "CA".
    #[error(
        "{what} file {path} holds no certificate (expected PEM \"BEGIN CERTIFICATE\" sections)"
    )]
    NoCertificate { what: &'static str, path: String },
    #[error("key file {path} holds no private key (expected PEM: PKCS#8, PKCS#1 or SEC1)")]
    NoPrivateKey { path: String },
    #[error("key file {path} holds a private key that cannot be used: {source}")]
    BadPrivateKey { path: String, source: rustls::Error },
    #[error("certificate file {path}: the leaf certificate cannot be used: {source}")]
    BadCertificate { path: String, source: rustls::Error },
    #[error("key file {key_path} does not match the certificate in {cert_path}")]
    KeyMismatch { cert_path: String, key_path: String },
    #[error("CA file {path} holds a certificate that cannot be used as a root: {source}")]
    BadCa { path: String, source: rustls::Error },
    /// Upstream mutual TLS with only one of `cert_file` and `key_file`.
    #[error("mutual TLS needs both cert_file and key_file, but only {given} is set ({path})")]
    IncompleteClientAuth { given: &'static str, path: String },
    #[error("cannot build the TLS configuration: {0}")]
    Config(rustls::Error),
}

/// The one crypto provider used everywhere (ring), independent of the process default.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

// ---------------------------------------------------------------------------------------------
// Termination

/// TLS termination for the data listener: TLS 1.2 and 1.3, ALPN "h2" and "http/1.1", the
/// certificate and key re-read when their files change (checked every `interval`), without a
/// restart.
///
/// One [`ServerConfig`] serves all connections; its certificate resolver hands out the current
/// certificate, which a reload swaps atomically. A connection uses the certificate current at
/// its handshake and keeps it; a client that resumes a session made before a reload is not
/// shown the new certificate until its next full handshake. Replacing the files by writing new ones and renaming them over
/// the old (as Kubernetes secret volumes and most tools do) is the safe way to update: the
/// watcher may otherwise see a new certificate beside the old key, which it reports and
/// retries once the key file changes too.
pub struct TlsTerminator {
    cert_file: String,
    key_file: String,
    resolver: Arc<ReloadingResolver>,
    acceptor: TlsAcceptor,
    /// Stamps of (cert_file, key_file) at the last load attempt, successful or not.
    seen: Mutex<(Option<Stamp>, Option<Stamp>)>,
}

impl fmt::Debug for TlsTerminator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTerminator")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

impl TlsTerminator {
    /// Reads the certificate chain and key; fails if either is unreadable, empty or they don't
    /// match.
    pub fn load(cfg: &ServerTls) -> Result<Self, TlsError> {
        let provider = provider();
        let seen = (stamp(&cfg.cert_file), stamp(&cfg.key_file));
        let key = load_certified_key(&cfg.cert_file, &cfg.key_file, &provider)?;
        let resolver = Arc::new(ReloadingResolver {
            current: ArcSwap::from_pointee(key),
        });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(VERSIONS)
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsTerminator {
            cert_file: cfg.cert_file.clone(),
            key_file: cfg.key_file.clone(),
            resolver,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            seen: Mutex::new(seen),
        })
    }

    /// The acceptor to use for new connections (cheap clone). Connections use the certificate
    /// current at handshake time.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Re-reads the files if their modification time or size (or, on Unix, inode) changed since
    /// the last attempt; on a bad new pair keeps the old one and returns the error (the caller
    /// logs it). A bad pair is reported once, then retried when either file changes again.
    /// Returns `Ok(true)` when a new certificate was installed.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        // Stat before reading: a write that lands after the stat shows up on the next check.
        let now = (stamp(&self.cert_file), stamp(&self.key_file));
        if now == *seen {
            return Ok(false);
        }
        *seen = now;
        let key = load_certified_key(&self.cert_file, &self.key_file, &provider())?;
        self.resolver.current.store(Arc::new(key));
        Ok(true)
    }

    /// Spawns a task that calls [`Self::reload_if_changed`] every `interval` and logs with
    /// tracing (info on reload, warn on error). The task stops when the returned `JoinHandle` is
    /// aborted.
    pub fn spawn_watcher(self: &Arc<Self>, interval: Duration) -> JoinHandle<()> {
        let this = Arc::clone(self);
        // `tokio::time::interval` panics on zero.
        let interval = interval.max(Duration::from_millis(1));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await; // the first tick is immediate
            loop {
                ticks.tick().await;
                let t = Arc::clone(&this);
                match tokio::task::spawn_blocking(move || t.reload_if_changed()).await {
                    Ok(Ok(true)) => tracing::info!(
                        cert_file = %this.cert_file,
                        key_file = %this.key_file,
                        "TLS certificate reloaded"
                    ),
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => tracing::warn!(
                        error = %e,
                        "TLS certificate reload failed; still serving the previous certificate"
                    ),
                    Err(e) => tracing::warn!(error = %e, "TLS certificate reload task failed"),
                }
            }
        })
    }
}

/// Hands every handshake the current certificate.
struct ReloadingResolver {
    current: ArcSwap<CertifiedKey>,
}

impl fmt::Debug for ReloadingResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingResolver").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// What tells a changed file from an unchanged one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    ino: u64,
}

/// `None` when the file cannot be stat'ed (a load attempt then reports why).
fn stamp(path: &str) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        #[cfg(unix)]
        ino: std::os::unix::fs::MetadataExt::ino(&m),
    })
}

// ---------------------------------------------------------------------------------------------
// Upstream

/// The connector for a backend's upstream client: plain `http://` and `https://` with the
/// backend's TLS settings.
pub type UpstreamConnector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Wraps `http` (already configured with timeouts, nodelay...) for `http://` and `https://`
/// endpoints. `https://` verifies against the system's roots when `ca_file` is `None`, else
/// only against the CA bundle, and presents `cert_file`/`key_file` for mutual TLS when set.
/// ALPN offers http/1.1 only. Sets `http.enforce_http(false)`.
///
/// When the system has no roots and `ca_file` is `None`, this still succeeds: `http://` works
/// and `https://` fails to verify at request time. The system's roots are read once per process.
pub fn upstream_connector(
    tls: &UpstreamTls,
    mut http: HttpConnector,
) -> Result<UpstreamConnector, TlsError> {
    http.enforce_http(false);
    let config = upstream_client_config(tls)?;
    Ok(hyper_rustls::HttpsConnector::from((http, config)))
}

fn upstream_client_config(tls: &UpstreamTls) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let roots = match &tls.ca_file {
        Some(path) => Arc::new(load_ca(path)?),
        None => native_roots(),
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(VERSIONS)
        .map_err(TlsError::Config)?
        .with_root_certificates(roots);
    let mut config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let key = load_certified_key(cert, key, &provider)?;
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(key)))
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), None) => {
            return Err(TlsError::IncompleteClientAuth {
                given: "cert_file",
                path: cert.clone(),
            })
        }
        (None, Some(key)) => {
            return Err(TlsError::IncompleteClientAuth {
                given: "key_file",
                path: key.clone(),
            })
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The system's root certificates, read once; empty (with a warning) when there are none.
fn native_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "cannot load some of the system's root certificates");
            }
            let mut store = RootCertStore::empty();
            let (added, ignored) = store.add_parsable_certificates(found.certs);
            if ignored > 0 {
                tracing::debug!(ignored, "ignored unusable system root certificates");
            }
            if added == 0 {
                tracing::warn!(
                    "no system root certificates found: https endpoints of backends without \
                     tls.ca_file will fail to verify"
                );
            }
            Arc::new(store)
        })
        .clone()
}

fn load_ca(path: &str) -> Result<RootCertStore, TlsError> {
    let certs = read_certs("CA", path)?;
    let mut store = RootCertStore::empty();
    for cert in certs {
        store.add(cert).map_err(|source| TlsError::BadCa {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(store)
}

// ---------------------------------------------------------------------------------------------
// Files

fn read_file(what: &'static str, path: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// All certificates in a PEM file, in order; at least one.
fn read_certs(what: &'static str, path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            what,
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn read_key(path: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_file("key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: path.to_owned(),
        },
        source => TlsError::Pem {
            what: "key",
            path: path.to_owned(),
            source,
        },
    })
}

/// A certificate chain (leaf first) and its private key, checked to match.
fn load_certified_key(
    cert_path: &str,
    key_path: &str,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = read_certs("certificate", cert_path)?;
    let key = read_key(key_path)?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::BadPrivateKey {
            path: key_path.to_owned(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // Unknown: the key type cannot tell its public key; the handshake will tell.
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                cert_path: cert_path.to_owned(),
                key_path: key_path.to_owned(),
            })
        }
        Err(source) => Err(TlsError::BadCertificate {
            path: cert_path.to_owned(),
            source,
        }),
    }
}
