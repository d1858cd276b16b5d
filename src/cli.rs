//! The command line, as clap definitions only; `settings` turns it into what the commands use.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::copy::Endpoint;
use crate::registry::SourceMirror;

/// `ferry --version`: the program's version and the bundle format it writes.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (bundle format 1)");
use crate::source::{ModuleFilter, PlatformSpec, SourceRoot, parse_version};

mod serve;
pub use serve::{LogFormatArg, ServeArgs};

/// ferry carries container images across an air gap.
#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version = VERSION,
    about,
    long_about = "ferry carries container images and OCI artifacts across an air gap: `ferry pull` \
writes what a platform needs into a bundle (a directory of tar files) on a connected host, \
`ferry verify` checks the bundle anywhere, `ferry push` fills a registry inside the closed \
network from it.",
    after_help = "Examples:
  ferry pull /mnt/bundle --source registry.example.com/deckhouse/ee -l \"$TOKEN\" -c 4 --gost-digest
  ferry verify --gost /mnt/bundle
  ferry push /mnt/bundle registry.internal:5000/deckhouse/ee -u robot -p \"$PASSWORD\"

Exit codes: 0 success, 1 failure (with a hint: line when the fix is known), 2 invalid command \
line, 130 interrupted.",
    propagate_version = true
)]
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
    /// Say more: a line per blob (repeat for debug output); turns progress bars into lines.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = "Output")]
    pub verbose: u8,
    /// Print only warnings and errors.
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = "Output"
    )]
    pub quiet: bool,
    /// Plain progress lines instead of a progress bar, even on a terminal.
    #[arg(long, global = true, help_heading = "Output")]
    pub no_progress: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy one image, index or artifact (every platform, byte for byte) between registries and
    /// OCI layouts.
    Copy(Box<CopyArgs>),
    /// Resolve what to take from a source registry and write it into a bundle directory.
    Pull(Box<PullArgs>),
    /// Upload a bundle into a registry: every tag, byte for byte, read back at the end.
    Push(Box<PushArgs>),
    /// Check a bundle offline: every file, chunk, manifest and blob against its sums and
    /// digests.
    Verify(VerifyArgs),
    /// List every tag a bundle holds: repository path, tag, digest, size.
    Ls(LsArgs),
    /// Serve bundles as a read-only registry, straight from their archives and chunks.
    Serve(Box<ServeArgs>),
    /// Make a signing key pair: PREFIX.key (sigstore encrypted format) and PREFIX.pub.
    Keygen(KeygenArgs),
    /// Print a shell completion script: `ferry completions bash > /etc/bash_completion.d/ferry`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), made from the same definitions as this help.
    #[command(hide = true)]
    Manpage,
}

/// `ferry pull BUNDLE_DIR --source HOST/PATH`.
#[derive(Debug, Args)]
#[command(
    after_help = "Module filters (-i/-e), quoted so the shell keeps < and >:
  NAME                 what its release channels point to
  NAME@1.3.0           = NAME@^1.3.0: every tag >=1.3.0 <2.0.0, plus the channel versions
  NAME@~1.3.0          every tag >=1.3.0 <1.4.0, plus the channel versions
  'NAME@>=1.1 <1.3'    a range (spaces or commas; || for alternatives)
  NAME@=v1.3.0         only that tag; every channel points to it
  NAME@=v1.3.0+stable  only that tag; only the stable channel points to it

Examples:
  ferry pull /mnt/bundle --source registry.example.com/deckhouse/ee -l \"$TOKEN\"
  ferry pull /mnt/bundle --source registry.example.com/deckhouse/ee -c 4 --gost-digest \\
      --since-version 1.60 -i console -i 'metrics@~2.1' --no-security-db
  ferry pull /mnt/bundle --source registry.example.com/deckhouse/ee --dry-run

Run the same command again to continue an interrupted pull (within 24 hours)."
)]
pub struct PullArgs {
    /// Where the bundle goes.
    #[arg(value_name = "BUNDLE_DIR")]
    pub dir: PathBuf,
    /// Source repository root, e.g. registry.example.com/deckhouse/ee (not needed with only
    /// --images or --images-from-list).
    #[arg(
        long,
        env = "FERRY_SOURCE",
        value_name = "HOST[:PORT]/PATH",
        help_heading = "Source and credentials",
        required_unless_present_any = ["images", "images_from_list"]
    )]
    pub source: Option<SourceRoot>,
    /// Credentials for the source registry.
    #[command(flatten, next_help_heading = "Source and credentials")]
    pub source_login: SourceLoginArgs,
    /// License token: shortcut for login `license-token` with the token as password.
    #[arg(
        short = 'l',
        long,
        env = "FERRY_LICENSE_TOKEN",
        hide_env_values = true,
        conflicts_with = "source_login",
        help_heading = "Source and credentials"
    )]
    pub license: Option<String>,
    /// Read REGISTRY's images from a mirror instead, never from REGISTRY itself, keeping their
    /// names in the bundle (repeatable: several for one REGISTRY are tried in order; REGISTRY
    /// may be host/path). The mirrors of containers' registries.conf are used too.
    #[arg(
        long,
        env = "FERRY_SOURCE_MIRROR",
        value_name = "REGISTRY=HOST[:PORT][/PATH]",
        value_delimiter = ',',
        help_heading = "Source and credentials"
    )]
    pub source_mirror: Vec<SourceMirror>,
    /// Source structure: a built-in name or a YAML file of the same shape.
    #[arg(
        long,
        value_name = "NAME|FILE",
        default_value = "deckhouse",
        help_heading = "Source and credentials"
    )]
    pub layout: String,
    /// Lowest platform release to pull; only lowers the floor set by the rock-solid channel.
    #[arg(long, value_name = "VERSION", value_parser = parse_version, conflicts_with = "deckhouse_tag", help_heading = "What to take")]
    pub since_version: Option<semver::Version>,
    /// Pull exactly this platform tag; release channels in the bundle point to it.
    #[arg(long, value_name = "TAG", value_parser = parse_tag, help_heading = "What to take")]
    pub deckhouse_tag: Option<String>,
    /// Take only these modules (repeatable; NAME[@CONSTRAINT]).
    #[arg(short = 'i', long = "include-module", value_name = "MODULE", conflicts_with_all = ["exclude", "no_modules"], help_heading = "What to take")]
    pub include: Vec<ModuleFilter>,
    /// Leave these modules out, or with @CONSTRAINT only those versions (repeatable).
    #[arg(
        short = 'e',
        long = "exclude-module",
        value_name = "MODULE",
        help_heading = "What to take"
    )]
    pub exclude: Vec<ModuleFilter>,
    /// Where modules live under the source (default from the layout: /modules).
    #[arg(long, value_name = "SUFFIX", help_heading = "What to take")]
    pub modules_path_suffix: Option<String>,
    /// Leave the platform out.
    #[arg(long, help_heading = "What to take")]
    pub no_platform: bool,
    /// Leave the security databases out.
    #[arg(long, help_heading = "What to take")]
    pub no_security_db: bool,
    /// Leave modules out.
    #[arg(long, help_heading = "What to take")]
    pub no_modules: bool,
    /// Of the selected modules, take only their extra images.
    #[arg(long, conflicts_with = "no_modules", help_heading = "What to take")]
    pub only_extra_images: bool,
    /// Also take what an image set file lists (flux mirror's Config or ferry's ImageSet;
    /// repeatable): archive images-<file name>.tar.
    #[arg(long = "images", value_name = "FILE", help_heading = "What to take")]
    pub images: Vec<PathBuf>,
    /// Also take the images a list names (whitespace- or line-separated references, # comments;
    /// - reads stdin): archive images-list.tar.
    #[arg(long, value_name = "FILE|-", help_heading = "What to take")]
    pub images_from_list: Option<PathBuf>,
    /// Leave ${VAR} in image set files as written instead of taking it from the environment.
    #[arg(long, help_heading = "What to take")]
    pub no_envsubst: bool,
    /// Refuse a Helm chart of an image set larger than this (500MB, 2GiB; charts stream, so
    /// this is a sanity limit, not a memory bound).
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size, help_heading = "What to take")]
    pub chart_size_limit: u64,
    /// Keep only this platform of every multi-platform index (repeatable; OS/ARCH[/VARIANT],
    /// e.g. linux/amd64). Filtered indexes get new digests; images pulled by digest stay whole.
    #[arg(
        long = "platform",
        value_name = "OS/ARCH[/VARIANT]",
        help_heading = "What to take"
    )]
    pub platforms: Vec<PlatformSpec>,
    /// Also take what refers to every manifest taken: signatures, SBOMs, attestations (OCI
    /// referrers, the sha256-<digest> tag schema, cosign's .sig/.att/.sbom tags).
    #[arg(long, help_heading = "What to take")]
    pub include_referrers: bool,
    /// Leave out every blob an earlier bundle holds (its directory or its bundle.json): push
    /// this bundle only where that one was pushed.
    #[arg(long, value_name = "OLD", help_heading = "What to take")]
    pub since_bundle: Option<PathBuf>,
    /// Fail when a selector selects nothing (a module filter, an image set's selector or
    /// chart version range), instead of warning and taking the rest.
    #[arg(long, help_heading = "What to take")]
    pub strict: bool,
    /// Take only images a containers-policy.json accepts: their cosign signatures (the
    /// sha256-<digest>.sig tag, signature referrers) are checked before any layer is fetched
    /// and travel in the bundle. Refused images fail the pull, each named.
    #[arg(long, value_name = "POLICY", help_heading = "Signatures")]
    pub verify_signatures: Option<PathBuf>,
    /// With --verify-signatures: leave refused images out (listed as warnings) instead of
    /// failing.
    #[arg(long, requires = "verify_signatures", help_heading = "Signatures")]
    pub skip_unsigned: bool,
    /// Sign bundle.json once sealed, writing bundle.json.sig (cosign sign-blob format): a
    /// ferry keygen or cosign key (passphrase from FERRY_KEY_PASSWORD or the terminal), or a
    /// plain PKCS#8 P-256 key from OpenSSL.
    #[arg(long, value_name = "KEY", help_heading = "Signatures")]
    pub sign_key: Option<PathBuf>,
    /// Split archives into chunks of at most N GB (N x 10^9 bytes), or a size with a unit
    /// (500MB, 64MiB); 0 = no split.
    #[arg(short = 'c', long = "images-bundle-chunk-size", value_name = "N", default_value = "0", allow_hyphen_values = true, value_parser = parse_chunk_size, help_heading = "Bundle")]
    pub chunk_size: u64,
    /// Write a GOST R 34.11-2012 (Streebog-256) .gostsum beside every archive file.
    #[arg(long, help_heading = "Bundle")]
    pub gost_digest: bool,
    /// Replace the archives of an earlier bundle in BUNDLE_DIR.
    #[arg(long, help_heading = "Bundle")]
    pub force: bool,
    /// Start over instead of resuming an unfinished pull.
    #[arg(long, help_heading = "Bundle")]
    pub no_pull_resume: bool,
    /// Where the archive files are built (default BUNDLE_DIR/.tmp).
    #[arg(long, value_name = "DIR", help_heading = "Bundle")]
    pub tmp_dir: Option<PathBuf>,
    /// Transport options.
    #[command(flatten, next_help_heading = "Connection")]
    pub transport: TransportArgs,
    /// Parallel downloads (at most 64).
    #[arg(short = 'j', long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64), help_heading = "Connection")]
    pub concurrency: u16,
    /// Resolve and print the plan; download nothing but manifests and metadata files.
    #[arg(long, help_heading = "Output")]
    pub dry_run: bool,
    /// With --dry-run: print the plan as JSON.
    #[arg(long, requires = "dry_run", help_heading = "Output")]
    pub json: bool,
}

fn parse_tag(input: &str) -> Result<String, String> {
    crate::reference::validate_tag(input).map(|_| input.to_string())
}

/// Smallest chunk: one tar block. Anything smaller is a typo, not a plan.
const MIN_CHUNK: u64 = 512;
/// Largest size ferry accepts anywhere: 1 PB.
const MAX_SIZE: f64 = 1e15;

/// `-c`: a bare number is GB (10^9 bytes), as `d8 mirror` reads it; a unit is also accepted.
/// 0 means no chunks.
pub fn parse_chunk_size(input: &str) -> Result<u64, String> {
    let s = input.trim();
    if s.starts_with('-') {
        return Err(format!("chunk size '{input}' cannot be less than zero"));
    }
    let bytes = match s.parse::<f64>() {
        Ok(gb) if !gb.is_finite() => {
            return Err(format!("chunk size '{input}' is not a number of GB"));
        }
        Ok(0.0) => return Ok(0),
        Ok(gb) => {
            if gb * 1e9 > MAX_SIZE {
                return Err(format!("chunk size '{input}' GB is beyond any disk"));
            }
            (gb * 1e9).round() as u64
        }
        Err(_) => parse_size(s)?,
    };
    if bytes < MIN_CHUNK {
        return Err(format!(
            "chunk size '{input}' is {bytes} bytes, smaller than a tar block ({MIN_CHUNK} bytes); \
             -c takes GB (4 = 4 GB) or a size with a unit (500MB)"
        ));
    }
    Ok(bytes)
}

/// `ferry verify BUNDLE_DIR`.
#[derive(Debug, Args)]
#[command(
    after_help = "Every byte is read once: file sums and blob digests come from one pass.

Examples:
  ferry verify /mnt/bundle
  ferry verify --gost /mnt/bundle
Without ferry: cd /mnt/bundle && sha256sum -c SHA256SUMS && rhash -c GOSTSUMS"
)]
pub struct VerifyArgs {
    /// The bundle directory.
    #[arg(value_name = "BUNDLE_DIR")]
    pub dir: PathBuf,
    /// Also check GOST R 34.11-2012 (Streebog-256) sums; a file without one is a problem.
    /// Sums that are present are checked even without this flag.
    #[arg(long)]
    pub gost: bool,
    /// First check bundle.json.sig with this public key (PEM); an unsigned bundle, another
    /// key's signature or a changed bundle.json stops the check before anything else is read.
    #[arg(long, value_name = "PUB")]
    pub key: Option<PathBuf>,
    /// Also hold every image to a containers-policy.json with the signatures the bundle
    /// carries.
    #[arg(long, value_name = "POLICY")]
    pub verify_signatures: Option<PathBuf>,
}

/// `ferry keygen PREFIX`.
#[derive(Debug, Args)]
#[command(
    after_help = "Writes PREFIX.key (the sigstore encrypted format cosign and skopeo read; passphrase from FERRY_KEY_PASSWORD, else asked twice on the terminal) and PREFIX.pub (PEM). Existing files are never overwritten.

Examples:
  ferry keygen /secure/ferry
  ferry pull /mnt/bundle --source registry.example.com/deckhouse/ee --sign-key /secure/ferry.key
  ferry push /mnt/bundle registry.internal:5000/deckhouse/ee --key ferry.pub"
)]
pub struct KeygenArgs {
    /// Where the keys go: PREFIX.key and PREFIX.pub.
    #[arg(value_name = "PREFIX")]
    pub prefix: PathBuf,
}

/// `ferry ls BUNDLE_DIR`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  ferry ls /mnt/bundle
  ferry ls --json /mnt/bundle | jq -r '.[] | \"\\(.path):\\(.tag)\"'")]
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
host[:port]/repo@sha256:<digest>, or an OCI layout oci:<dir>:<tag>.

Examples:
  ferry copy registry.example.com/tools/kubectl:v1.31 oci:/mnt/layouts/kubectl:v1.31
  ferry copy oci:/mnt/layouts/kubectl:v1.31 registry.internal:5000/tools/kubectl:v1.31"
)]
pub struct CopyArgs {
    /// What to copy: host[:port]/repo:tag, host[:port]/repo@sha256:…, or oci:<dir>:<tag>.
    #[arg(value_name = "SRC")]
    pub source: Endpoint,
    /// Where to: host[:port]/repo[:tag] or oci:<dir>[:<tag>] (the tag defaults to the source's).
    #[arg(value_name = "DST")]
    pub destination: Endpoint,
    /// Credentials for the source registry.
    #[command(flatten, next_help_heading = "Credentials")]
    pub source_login: SourceLoginArgs,
    /// Credentials for the destination registry.
    #[command(flatten, next_help_heading = "Credentials")]
    pub registry_login: RegistryLoginArgs,
    /// Transport options for both sides.
    #[command(flatten, next_help_heading = "Connection")]
    pub transport: TransportArgs,
    /// Parallel blob transfers (at most 64).
    #[arg(short = 'j', long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64), help_heading = "Connection")]
    pub concurrency: u16,
    /// Where blobs wait between two registries (default: the system temp directory).
    #[arg(long, value_name = "DIR", help_heading = "Connection")]
    pub tmp_dir: Option<PathBuf>,
    /// Upload blobs in PATCH requests of at most this many bytes (units as in 64MiB, 500MB),
    /// for proxies that limit request bodies; default is one PUT per blob.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = "Connection")]
    pub upload_chunk_size: Option<u64>,
}

/// `ferry push BUNDLE_DIR HOST[:PORT]/PATH`.
#[derive(Debug, Args)]
#[command(
    after_help = "Every layout in the bundle goes to TARGET/<its path in the archive>: \
the platform to TARGET, its installer to TARGET/install, modules to TARGET/modules/<name>. \
Blobs first, then manifests, release-channel and module catalog tags last. A rerun sends only \
what is missing.

Examples:
  FERRY_REGISTRY_LOGIN=robot FERRY_REGISTRY_PASSWORD=secret \\
      ferry push /mnt/bundle registry.internal:5000/deckhouse/ee --receipt receipt.json
  SSL_CERT_FILE=/etc/ssl/internal-ca.pem ferry push /mnt/bundle harbor.internal/deckhouse/ee
  ferry push /mnt/bundle registry.internal:5000/deckhouse/ee --dry-run"
)]
pub struct PushArgs {
    /// The bundle directory (written by `ferry pull` or `d8 mirror pull`).
    #[arg(value_name = "BUNDLE_DIR")]
    pub dir: PathBuf,
    /// Where to: the repository root, e.g. registry.internal:5000/deckhouse/ee.
    #[arg(value_name = "HOST[:PORT]/PATH")]
    pub target: SourceRoot,
    /// Credentials for the target registry.
    #[command(flatten, next_help_heading = "Target and credentials")]
    pub registry_login: RegistryLoginArgs,
    /// Where modules go under the target (default /modules).
    #[arg(long, value_name = "SUFFIX", help_heading = "Target and credentials")]
    pub modules_path_suffix: Option<String>,
    /// Leave a tag that points elsewhere at the target as it is (reported as drifted) instead
    /// of moving it.
    #[arg(long, help_heading = "Target and credentials")]
    pub no_overwrite: bool,
    /// First check bundle.json.sig with this public key (PEM): an unsigned bundle, another
    /// key's signature or a changed bundle.json is refused before anything else is read.
    #[arg(long, value_name = "PUB", help_heading = "Signatures")]
    pub key: Option<PathBuf>,
    /// Hold every image to a containers-policy.json with the signatures the bundle carries,
    /// before the target hears a word.
    #[arg(long, value_name = "POLICY", help_heading = "Signatures")]
    pub verify_signatures: Option<PathBuf>,
    /// Transport options.
    #[command(flatten, next_help_heading = "Connection")]
    pub transport: TransportArgs,
    /// Parallel uploads (at most 64).
    #[arg(short = 'j', long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64), help_heading = "Connection")]
    pub concurrency: u16,
    /// Upload blobs in PATCH requests of at most this many bytes (units as in 64MiB, 500MB);
    /// default is one PUT per blob, switching to PATCHes when a body is refused (413).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = "Connection")]
    pub upload_chunk_size: Option<u64>,
    /// Accepted for `d8 mirror push` compatibility; push streams from the bundle files and
    /// needs no temporary space.
    #[arg(long, value_name = "DIR", help_heading = "Connection")]
    pub tmp_dir: Option<PathBuf>,
    /// Write a JSON receipt of every repository, tag, digest and what happened to it.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub receipt: Option<PathBuf>,
    /// Ask the target what it has (HEAD requests only) and print what would be sent.
    #[arg(long, help_heading = "Output")]
    pub dry_run: bool,
}

/// Destination registry credentials (`copy` and `push`); otherwise the docker and containers
/// credential files are read.
#[derive(Debug, Args)]
pub struct RegistryLoginArgs {
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
}

/// Source registry credentials (`copy` and `pull`); otherwise the docker and containers
/// credential files are read.
#[derive(Debug, Args)]
pub struct SourceLoginArgs {
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
    /// A transfer that gets no byte for this many seconds, or less than 16 KiB in that time,
    /// has stalled and fails (downloads then resume by retry).
    #[arg(long, value_name = "SECONDS", env = "FERRY_STALL_TIMEOUT", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub stall_timeout: u64,
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
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("'{input}' is not a size; write e.g. 500MB, 64MiB or 2GiB"))?;
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
    if bytes > MAX_SIZE {
        return Err(format!("'{input}' is beyond any disk"));
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
    fn chunk_sizes_are_gb_unless_a_unit_says_otherwise() {
        assert_eq!(parse_chunk_size("0"), Ok(0));
        assert_eq!(parse_chunk_size("4"), Ok(4_000_000_000));
        assert_eq!(parse_chunk_size("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_chunk_size("64KiB"), Ok(65536));
        for bad in ["-1", "nan", "inf", "1e-12", "0.0000001", "100B", "1e9"] {
            assert!(parse_chunk_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
