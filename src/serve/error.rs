//! Why `ferry serve` could not start (once it listens, a failed request is that request's
//! answer, never the server's end).

use std::path::PathBuf;

use crate::bundle::BundleError;
use crate::digest::Digest;

/// What stops `ferry serve` from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A bundle cannot be opened or read.
    #[error("{}: {source}", dir.display())]
    Bundle {
        /// The bundle directory.
        dir: PathBuf,
        /// What is wrong with it.
        source: BundleError,
    },
    /// A bundle does not check out as push would have it.
    #[error("{} cannot be served:\n  {}", dir.display(), problems.join("\n  "))]
    Refused {
        /// The bundle directory.
        dir: PathBuf,
        /// One line per problem.
        problems: Vec<String>,
    },
    /// Two bundles give one name two different images.
    #[error("{name} is {first} and {second}; serve bundles that agree, or each on its own")]
    Conflict {
        /// `repository:tag`.
        name: String,
        /// The first bundle's image and where it is.
        first: String,
        /// The second bundle's image and where it is.
        second: String,
    },
    /// A bundle holds images at its root and no `--prefix` names their repository.
    #[error(
        "{}: {archive} holds images at its root, which need a repository name: give one with \
         --prefix, e.g. --prefix deckhouse/ee (they are then served as HOST/deckhouse/ee:TAG)",
        dir.display()
    )]
    RootNeedsPrefix {
        /// The bundle directory.
        dir: PathBuf,
        /// The archive with a root layout.
        archive: String,
    },
    /// A differential bundle is served without the bundle its left-out blobs are in.
    #[error(
        "{} is a differential bundle and {count} blobs it left out (e.g. {example}) are in no \
         bundle served with it; serve its base too: ferry serve {} BASE_DIR",
        dir.display(), dir.display()
    )]
    BaseMissing {
        /// The differential bundle.
        dir: PathBuf,
        /// How many blobs are missing.
        count: usize,
        /// One of them.
        example: Digest,
    },
    /// `--verify` found problems.
    #[error("{} failed its check:\n  {}", dir.display(), problems.join("\n  "))]
    Unverified {
        /// The bundle directory.
        dir: PathBuf,
        /// One line per problem.
        problems: Vec<String>,
    },
    /// The TLS certificate or key cannot be used.
    #[error("{}: {reason}", path.display())]
    Tls {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The htpasswd file cannot be used.
    #[error("{}: {reason}", path.display())]
    Htpasswd {
        /// The file.
        path: PathBuf,
        /// Why, with the line.
        reason: String,
    },
    /// The address cannot be listened on.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: std::net::SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
}
