//! `ferry serve`'s arguments.

use std::path::PathBuf;

use clap::Args;

/// `ferry serve BUNDLE_DIR…`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  ferry serve --prefix deckhouse/ee /mnt/bundle
  skopeo inspect --tls-verify=false docker://127.0.0.1:5000/deckhouse/ee/install:stable
  ferry serve --listen 0.0.0.0:5000 --prefix deckhouse/ee --tls-cert srv.crt \\
      --tls-key srv.key --htpasswd htpasswd /mnt/bundle
  ferry serve --prefix deckhouse/ee /mnt/diff-bundle /mnt/base-bundle   (with its base)")]
pub struct ServeArgs {
    /// The bundle directories (written by `ferry pull` or `d8 mirror pull`), served as one
    /// registry.
    #[arg(value_name = "BUNDLE_DIR", required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where to listen.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:5000")]
    pub listen: std::net::SocketAddr,
    /// A repository path every image is served under, e.g. deckhouse/ee (needed when a bundle
    /// holds images at its root, as platform bundles do).
    #[arg(long, value_name = "PATH")]
    pub prefix: Option<String>,
    /// Where modules appear (default /modules), as for push.
    #[arg(long, value_name = "SUFFIX")]
    pub modules_path_suffix: Option<String>,
    /// PEM certificate chain to serve HTTPS with (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require a login from an htpasswd file with bcrypt entries (htpasswd -B).
    #[arg(long, value_name = "FILE")]
    pub htpasswd: Option<PathBuf>,
    /// Check every file's sums and every blob's digest before serving.
    #[arg(long)]
    pub verify: bool,
    /// The request log's form.
    #[arg(long, value_enum, default_value = "common")]
    pub log_format: LogFormatArg,
    /// Connections served at once.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_connections: u16,
    /// Seconds a connection may stay without moving a byte.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub idle_timeout: u64,
}

/// The request log's forms.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormatArg {
    /// The common log format.
    Common,
    /// One JSON object a line.
    Json,
}
