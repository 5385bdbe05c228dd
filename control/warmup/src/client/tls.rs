//! TLS for `https://` sources: rustls' client settings, and telling certificate errors apart.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::error::WarmupError;

/// rustls' client settings for `https://` sources: TLS 1.2 and 1.3, ALPN http/1.1, verified
/// against `ca_file` (PEM) when given, else against the system's roots (read once per process).
/// An `http://` source never uses them: it gets no roots, and nothing is read.
pub(super) fn tls_config(
    https: bool,
    ca_file: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, WarmupError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let roots = match ca_file {
        None if !https => Arc::new(rustls::RootCertStore::empty()),
        None => system_roots(),
        Some(path) => {
            let bad = |reason: String| {
                WarmupError::InvalidJob(format!("ca_file {}: {reason}", path.display()))
            };
            let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            let mut store = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| bad(e.to_string()))?;
                store.add(cert).map_err(|e| bad(e.to_string()))?;
            }
            if store.is_empty() {
                return Err(bad("no certificate in the file".into()));
            }
            Arc::new(store)
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WarmupError::InvalidJob(format!("TLS settings: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn system_roots() -> Arc<rustls::RootCertStore> {
    static ROOTS: OnceLock<Arc<rustls::RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = rustls::RootCertStore::empty();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                tracing::warn!("no system root certificates: https sources need a ca_file");
            }
            Arc::new(store)
        })
        .clone()
}

/// Whether a client error comes from a server certificate that does not verify.
pub(super) fn certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        find_tls_error(e),
        Some(rustls::Error::InvalidCertificate(_))
    )
}

/// rustls' error behind `e`. tokio-rustls reports it inside an `io::Error` (which the
/// connector may wrap in another), and `io::Error::source` skips the error it wraps: so look
/// inside with `get_ref`.
fn find_tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        return find_tls_error(inner as &(dyn std::error::Error + 'static));
    }
    e.source().and_then(find_tls_error)
}
