//! What `ferry serve` is asked to do, as plain data: `settings` builds it from the command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One bundle directory to serve.
#[derive(Debug, Clone)]
pub struct ServedBundle {
    /// The directory.
    pub dir: PathBuf,
    /// The module catalog's path inside this bundle (from the layout description it was pulled
    /// with); `--modules-path-suffix` moves the tree below it, as push does.
    pub catalog: String,
}

/// The certificate and key files a TLS listener presents.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// How each request is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// The common log format web servers write.
    Common,
    /// One JSON object a line.
    Json,
}

/// Bounds that keep one client from starving the others.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more wait in the kernel's backlog.
    pub connections: usize,
    /// A request's header section may take at most this long to arrive.
    pub header_timeout: Duration,
    /// A connection that moves no byte for this long is closed.
    pub idle_timeout: Duration,
    /// The largest header section accepted, in bytes.
    pub header_bytes: usize,
    /// Blob bytes read from the bundle and not yet sent, for all clients together; past it,
    /// reading waits for clients to take what they were sent.
    pub budget_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: 256,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            header_bytes: 16 * 1024,
            budget_bytes: 8 << 20,
        }
    }
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The bundles, served as one registry.
    pub bundles: Vec<ServedBundle>,
    /// Where to listen.
    pub listen: SocketAddr,
    /// A repository path every name is served under ("" for none).
    pub prefix: String,
    /// Where the module catalog appears, replacing its path in the bundles.
    pub modules_path: Option<String>,
    /// TLS, or plain HTTP without it.
    pub tls: Option<TlsFiles>,
    /// An htpasswd file (bcrypt entries): every request must then log in.
    pub htpasswd: Option<PathBuf>,
    /// Check every file's sums and every blob's digest before serving.
    pub verify: bool,
    /// The access log's form.
    pub log_format: LogFormat,
    /// Connection bounds.
    pub limits: Limits,
}
