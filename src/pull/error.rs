//! What can go wrong in a pull, and the one-line fix for each when there is an obvious one.

use std::path::PathBuf;

use super::space::SpaceCheck;
use super::work::WorkError;
use crate::bundle::BundleError;
use crate::imageset::charts::ChartError;
use crate::registry::RegistryError;
use crate::report::{human_bytes, list_some};
use crate::source::SourceError;

/// What can go wrong in a pull.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// Resolving what to take failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Talking to the source failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Writing the bundle failed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The work directory cannot be used.
    #[error(transparent)]
    Work(#[from] WorkError),
    /// A Helm chart cannot be fetched into the bundle.
    #[error(transparent)]
    Chart(Box<ChartError>),
    /// The selection matched nothing.
    #[error("nothing to take from {source_root}: {detail}")]
    Empty {
        /// The source.
        source_root: String,
        /// Which selection it was.
        detail: String,
    },
    /// The plan holds what a bundle reader would refuse.
    #[error(
        "the source has what a bundle cannot carry (verify and push would refuse it):\n  {}",
        problems.join("\n  ")
    )]
    Unreadable {
        /// One line per item, naming where it came from.
        problems: Vec<String>,
    },
    /// The plan's manifests together are more than a pull holds in memory.
    #[error(
        "the plan's {count} manifests are {} together, over the {} a pull holds in memory",
        human_bytes(*bytes),
        human_bytes(*limit)
    )]
    TooManyManifestBytes {
        /// Their bytes.
        bytes: u64,
        /// How many.
        count: usize,
        /// The most a pull takes.
        limit: u64,
    },
    /// `--force` into a directory holding archives this pull does not write.
    #[error(
        "{} holds archives this pull does not write ({}); bundle.json would not list them and \
         the bundle would not verify",
        dir.display(),
        list_some(names)
    )]
    ForeignArchives {
        /// The directory.
        dir: PathBuf,
        /// Their file names.
        names: Vec<String>,
    },
    /// `--strict`: selectors selected nothing.
    #[error(
        "--strict: {} selector(s) selected nothing: {}",
        selectors.len(),
        selectors.join("; ")
    )]
    Unselected {
        /// What each selector was and what it found.
        selectors: Vec<String>,
    },
    /// The bundle directory holds files of something else.
    #[error("{} is not empty (it holds {})", dir.display(), found.join(", "))]
    NotEmpty {
        /// The directory.
        dir: PathBuf,
        /// A few of the names found.
        found: Vec<String>,
    },
    /// The disks are too small for the bundle.
    #[error("not enough free space: {}", describe_space(.0))]
    NoSpace(Vec<SpaceCheck>),
    /// `--verify-signatures`: images the policy does not accept (without `--skip-unsigned`).
    #[error(
        "{} image(s) refused by the signature policy {}:\n  {}",
        refused.len(),
        policy.display(),
        refused.join("\n  ")
    )]
    Refused {
        /// The policy file.
        policy: PathBuf,
        /// One line per image: its name and why.
        refused: Vec<String>,
    },
    /// A signature policy or key that cannot be used, or the bundle cannot be signed.
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
    /// Some blobs could not be fetched.
    #[error(
        "{failed} blob(s) could not be fetched ({error}); {} tag(s) are incomplete: {}",
        images.len(),
        list_some(images)
    )]
    Incomplete {
        /// The first failure.
        error: Box<PullError>,
        /// How many blobs failed.
        failed: usize,
        /// The tags that lack a blob, as `path:tag`.
        images: Vec<String>,
    },
}

fn describe_space(checks: &[SpaceCheck]) -> String {
    checks
        .iter()
        .filter(|c| c.is_short())
        .map(|c| {
            format!(
                "{} has {} free, the pull needs {} there",
                c.dir.display(),
                human_bytes(c.free),
                human_bytes(c.needed)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl PullError {
    /// True for errors in what the user asked (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, PullError::Source(e) if e.is_usage())
    }

    /// True when a disk filled up somewhere underneath.
    pub fn is_disk_full(&self) -> bool {
        if let PullError::Incomplete { error, .. } = self {
            return error.is_disk_full();
        }
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = current {
            if let Some(io) = error.downcast_ref::<std::io::Error>()
                && (io.kind() == std::io::ErrorKind::StorageFull
                    || io.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error()))
            {
                return true;
            }
            current = error.source();
        }
        false
    }
}
