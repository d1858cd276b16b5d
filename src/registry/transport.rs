//! The HTTP transport: TLS roots, `--tls-skip-verify`, `--insecure` plain HTTP, proxies from
//! the environment, timeouts. HTTP/1.1 only: one connection per transfer moves bulk blobs faster
//! than HTTP/2's fixed flow-control windows.

use std::path::Path;
use std::time::Duration;

use super::error::RegistryError;

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Plain HTTP instead of HTTPS.
    pub insecure: bool,
    /// Accept any certificate (and any host name in it).
    pub tls_skip_verify: bool,
    /// A transfer that waits this long for a byte, or moves less than [`MIN_BYTES_PER_STALL`]
    /// in this long, has stalled: it fails (and a download resumes by retry).
    pub stall_timeout: Duration,
    /// PEM certificates trusted for this registry instead of any other (an image set's
    /// `tls.serverAuth`).
    pub roots_pem: Option<Vec<u8>>,
}

/// What a transfer must move per stall timeout to count as alive.
pub const MIN_BYTES_PER_STALL: u64 = 16 << 10;

/// The stall timeout when none is given.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(120);

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            insecure: false,
            tls_skip_verify: false,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            roots_pem: None,
        }
    }
}

/// Builds the HTTP client. Trust comes from the system roots, or, when `SSL_CERT_FILE` or
/// `SSL_CERT_DIR` is set, from those certificates only; a CA file that cannot be read or holds
/// no certificate is an error, never a silent fallback to other roots.
pub fn http_client(options: &TransportOptions) -> Result<reqwest::Client, RegistryError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
        .http1_only()
        .connect_timeout(Duration::from_secs(30))
        // A stalled transfer fails after this long without a byte, then resumes by retry.
        .read_timeout(options.stall_timeout)
        .pool_idle_timeout(Duration::from_secs(60));
    if options.tls_skip_verify {
        builder = builder.tls_danger_accept_invalid_certs(true);
    } else if let Some(pem) = &options.roots_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                RegistryError::Config(
                    "the CA given for this registry holds no PEM certificate".into(),
                )
            })?;
        builder = builder.tls_certs_only(certs);
    } else if let Some(roots) = roots_from_env()? {
        builder = builder.tls_certs_only(roots);
    }
    builder
        .build()
        .map_err(|e| RegistryError::Config(format!("cannot set up the HTTP client: {e}")))
}

fn roots_from_env() -> Result<Option<Vec<reqwest::Certificate>>, RegistryError> {
    let file = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty());
    let dir = std::env::var_os("SSL_CERT_DIR").filter(|v| !v.is_empty());
    if file.is_none() && dir.is_none() {
        return Ok(None);
    }
    let mut roots = Vec::new();
    if let Some(file) = file {
        let path = Path::new(&file);
        let pem = std::fs::read(path).map_err(|e| {
            RegistryError::Config(format!(
                "SSL_CERT_FILE={}: cannot read it: {e}",
                path.display()
            ))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| RegistryError::Config(format!("SSL_CERT_FILE={}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(RegistryError::Config(format!(
                "SSL_CERT_FILE={} holds no PEM certificate",
                path.display()
            )));
        }
        roots.extend(certs);
    }
    if let Some(dir) = dir {
        let path = Path::new(&dir);
        let entries = std::fs::read_dir(path).map_err(|e| {
            RegistryError::Config(format!(
                "SSL_CERT_DIR={}: cannot read it: {e}",
                path.display()
            ))
        })?;
        for entry in entries.flatten() {
            // Certificate directories mix certificates with hash links and other files; take
            // every file that parses as PEM certificates.
            if let Ok(pem) = std::fs::read(entry.path())
                && let Ok(certs) = reqwest::Certificate::from_pem_bundle(&pem)
            {
                roots.extend(certs);
            }
        }
    }
    Ok(Some(roots))
}
