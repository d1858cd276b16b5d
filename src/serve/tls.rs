//! The TLS side of the listener: a certificate chain and key from PEM files, offering
//! HTTP/1.1 by ALPN.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use super::error::ServeError;
use super::htpasswd::read_config_file;
use super::options::TlsFiles;

/// How large a certificate or key file may be.
const PEM_LIMIT: u64 = 1 << 20;

/// An acceptor presenting the certificate in `files`.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, ServeError> {
    let fail = |path: &Path, reason: String| ServeError::Tls {
        path: path.to_path_buf(),
        reason,
    };
    let cert_pem = read_config_file(&files.cert, PEM_LIMIT).map_err(|r| fail(&files.cert, r))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| fail(&files.cert, format!("is not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(fail(&files.cert, "holds no CERTIFICATE block".into()));
    }
    let key_pem = read_config_file(&files.key, PEM_LIMIT).map_err(|r| fail(&files.key, r))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        fail(
            &files.key,
            format!("holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(&files.cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            fail(
                &files.key,
                format!(
                    "does not go with the certificate in {}: {e}",
                    files.cert.display()
                ),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
