//! What can go wrong in a push, each error naming the repository, tag, blob or file, with a
//! one-line fix where there is an obvious one.

use std::path::PathBuf;

use crate::bundle::BundleError;
use crate::digest::Digest;
use crate::registry::RegistryError;
use crate::report::list_some;

/// What can go wrong in a push.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The bundle's signature does not hold, or a key or policy cannot be used.
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
    /// `--verify-signatures`: images the policy does not accept; nothing was sent.
    #[error(
        "{} image(s) refused by the signature policy {}; nothing was sent:\n  {}",
        refused.len(),
        policy.display(),
        refused.join("\n  ")
    )]
    Refused {
        /// The policy file.
        policy: std::path::PathBuf,
        /// One line per image: its name and why.
        refused: Vec<String>,
    },
    /// Layouts going to one repository give one tag different images.
    #[error(
        "two layouts of the bundle go to one repository at the target and give a tag two \
         images; nothing was sent:\n  {}",
        conflicts.join("\n  ")
    )]
    Conflicts {
        /// One line per tag, naming both images and their layouts.
        conflicts: Vec<String>,
    },
    /// The bundle cannot be read or is incomplete.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The target refused something.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A repository could not be written (it may not exist and the registry will not create it).
    #[error("{repository}: {source}")]
    Repository {
        /// The repository.
        repository: String,
        /// What the registry said.
        #[source]
        source: Box<RegistryError>,
    },
    /// The registry refused to move a tag.
    #[error(
        "{repository}:{tag} exists with another digest and the registry refused to move it: {source}"
    )]
    Immutable {
        /// The repository.
        repository: String,
        /// The tag.
        tag: String,
        /// What the registry said.
        #[source]
        source: Box<RegistryError>,
    },
    /// Some blobs could not be sent; the tags that need them were not written.
    #[error("{} blob(s) could not be pushed ({first}); {} tag(s) were not written: {}", failed, skipped.len(), list_some(skipped))]
    Incomplete {
        /// The first failure.
        first: Box<PushError>,
        /// How many blobs failed.
        failed: usize,
        /// The tags left out, as `repository:tag`.
        skipped: Vec<String>,
    },
    /// Tags at the target do not point where the bundle says after the push.
    #[error("read back: {}", mismatches.join("; "))]
    ReadBack {
        /// One line per tag.
        mismatches: Vec<String>,
    },
    /// A differential bundle was pushed where its base was not.
    #[error(
        "this bundle is differential: it leaves out what {base} holds (pulled from {origin}), \
         and the target lacks {} of those blobs: {}; nothing was sent",
        missing.len(),
        list_some(missing)
    )]
    BaseMissing {
        /// The base bundle, described.
        base: String,
        /// Where the base came from.
        origin: String,
        /// The blobs missing, with the repository needing each.
        missing: Vec<String>,
    },
    /// A left-out blob is at the target but the registry would not mount it where needed.
    #[error(
        "{repository}: the target has blob {digest} in {from}, but would not link it here, and \
         this differential bundle does not hold it"
    )]
    NotMounted {
        /// The repository needing it.
        repository: String,
        /// The blob.
        digest: Digest,
        /// Where the target has it.
        from: String,
    },
    /// The receipt could not be written.
    #[error("cannot write the receipt {}: {source}", path.display())]
    Receipt {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl PushError {
    /// `source`, met asking or writing `repository`.
    pub(super) fn in_repository(repository: &str, source: RegistryError) -> PushError {
        PushError::Repository {
            repository: repository.to_string(),
            source: Box::new(source),
        }
    }
}
