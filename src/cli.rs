//! The command line, as clap definitions only; `settings` turns it into what the commands use.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::copy::Endpoint;

/// ferry carries container images across an air gap.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, propagate_version = true)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Say more (repeat for debug output); turns progress bars into plain lines.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Plain progress lines instead of a progress bar, even on a terminal.
    #[arg(long, global = true)]
    pub no_progress: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy one image, index or artifact (every platform, byte for byte) between registries and
    /// OCI layouts.
    Copy(Box<CopyArgs>),
    /// Check a bundle offline: every file, chunk, manifest and blob against its sums and
    /// digests.
    Verify(VerifyArgs),
    /// List every tag a bundle holds: repository path, tag, digest, size.
    Ls(LsArgs),
}

/// `ferry verify BUNDLE_DIR`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle directory.
    #[arg(value_name = "BUNDLE_DIR")]
    pub dir: PathBuf,
    /// Also check GOST R 34.11-2012 (Streebog-256) sums; a file without one is a problem.
    /// Sums that are present are checked even without this flag.
    #[arg(long)]
    pub gost: bool,
}

/// `ferry ls BUNDLE_DIR`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// The bundle directory.
    #[arg(value_name = "BUNDLE_DIR")]
    pub dir: PathBuf,
    /// Print one JSON array (path, tag, digest, media_type, size) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `ferry copy SRC DST`.
#[derive(Debug, Args)]
#[command(
    after_help = "Endpoints: a registry reference host[:port]/repo:tag or \
host[:port]/repo@sha256:<digest>, or an OCI layout oci:<dir>:<tag>."
)]
pub struct CopyArgs {
    /// What to copy: host[:port]/repo:tag, host[:port]/repo@sha256:…, or oci:<dir>:<tag>.
    #[arg(value_name = "SRC")]
    pub source: Endpoint,
    /// Where to: host[:port]/repo[:tag] or oci:<dir>[:<tag>] (the tag defaults to the source's).
    #[arg(value_name = "DST")]
    pub destination: Endpoint,
    /// Login for the source registry.
    #[arg(long, env = "FERRY_SOURCE_LOGIN", requires = "source_password")]
    pub source_login: Option<String>,
    /// Password or token for the source registry.
    #[arg(
        long,
        env = "FERRY_SOURCE_PASSWORD",
        hide_env_values = true,
        requires = "source_login"
    )]
    pub source_password: Option<String>,
    /// Login for the destination registry.
    #[arg(
        short = 'u',
        long,
        env = "FERRY_REGISTRY_LOGIN",
        requires = "registry_password"
    )]
    pub registry_login: Option<String>,
    /// Password or token for the destination registry.
    #[arg(
        short = 'p',
        long,
        env = "FERRY_REGISTRY_PASSWORD",
        hide_env_values = true,
        requires = "registry_login"
    )]
    pub registry_password: Option<String>,
    /// Transport options for both sides.
    #[command(flatten)]
    pub transport: TransportArgs,
    /// Parallel blob transfers.
    #[arg(short = 'j', long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Where blobs wait between two registries (default: the system temp directory).
    #[arg(long, value_name = "DIR")]
    pub tmp_dir: Option<PathBuf>,
    /// Upload blobs in PATCH requests of at most this many bytes (units as in 64MiB, 500MB),
    /// for proxies that limit request bodies; default is one PUT per blob.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub upload_chunk_size: Option<u64>,
}

/// Transport options shared by the commands that talk to registries.
#[derive(Debug, Args)]
pub struct TransportArgs {
    /// Do not verify registry TLS certificates.
    #[arg(long)]
    pub tls_skip_verify: bool,
    /// Talk plain HTTP to the registries (and allow an http:// token service).
    #[arg(long)]
    pub insecure: bool,
}

/// Parses `N` (bytes) or `N` with a unit: kB/MB/GB (powers of 10) or KiB/MiB/GiB (powers of 2).
pub fn parse_size(input: &str) -> Result<u64, String> {
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{input}' is not a size; write e.g. 500MB, 64MiB or 2GiB"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "unknown unit in '{input}'; use kB, MB, GB, KiB, MiB or GiB"
            ));
        }
    };
    let bytes = (value * factor).round();
    if bytes < 1.0 {
        return Err(format!("'{input}' is less than one byte"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_both_unit_families() {
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
