//! The bundle (format v1): the directory of tar archives that crosses the air gap, with its
//! chunks, checksum files and `bundle.json`. Everything here is offline: it reads and writes
//! files, never the network.

pub mod base;
pub mod blob_lists;
pub mod contents;
pub mod entry_path;
mod entry_sink;
pub mod fill;
pub mod index;
pub mod jobs;
pub mod layouts;
pub mod metadata;
pub mod names;
mod open_archives;
pub mod pack;
pub mod plan;
pub mod publish;
pub mod reader;
pub mod replace;
mod sealer;
pub mod sums;
pub mod writer;

use std::path::PathBuf;

use crate::digest::Digest;
use crate::file_error::FileError;
use crate::manifest::ManifestError;

pub use base::Base;
pub use entry_path::EntryPath;
pub use index::{EntryLocation, TarIndex};
pub use layouts::{ArchiveLayouts, BundleLayout};
pub use metadata::{
    ArchiveRecord, BUNDLE_FILE, BUNDLE_SIGNATURE, BaseRecord, BlobRecord, BundleMetadata,
    FileRecord, ImageRecord, PolicyRecord,
};
pub use plan::{ArchivePlan, EntryContent};
pub use reader::{Archive, ArchiveFile, Bundle};
pub use writer::ArchiveWriter;

/// What can go wrong with a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file system operation failed.
    #[error(transparent)]
    Io(#[from] FileError),
    /// The directory holds neither `bundle.json` nor any archive.
    #[error("{} holds no bundle (no bundle.json, no *.tar, no *.tar.NNNN.chunk)", path.display())]
    NotABundle {
        /// The directory.
        path: PathBuf,
    },
    /// Files the bundle needs are missing or have the wrong size.
    #[error("the bundle is incomplete:\n  {}", problems.join("\n  "))]
    Incomplete {
        /// One line per missing or damaged file.
        problems: Vec<String>,
    },
    /// `bundle.json` cannot be used.
    #[error("{} is not valid: {reason}", path.display())]
    BadMetadata {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An archive holds an entry ferry refuses to read.
    #[error("{archive}: entry '{entry}' is refused: {reason}")]
    UnsafeEntry {
        /// The archive.
        archive: String,
        /// The entry's path as written in the tar.
        entry: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An archive is not a readable tar.
    #[error("{archive} is not a readable tar ({reason}) in {file}")]
    BadTar {
        /// The archive.
        archive: String,
        /// The file (chunk) where reading stopped.
        file: String,
        /// What the tar reader said.
        reason: String,
    },
    /// A layout inside an archive cannot be used.
    #[error("{archive}: layout '{layout}': {reason}")]
    BadLayout {
        /// The archive.
        archive: String,
        /// The layout's path inside the archive ("" for the root).
        layout: String,
        /// What is wrong.
        reason: String,
    },
    /// A manifest inside an archive cannot be followed.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A blob a manifest needs is not in its layout.
    #[error("{archive}: layout '{layout}' lacks blob {digest}")]
    MissingBlob {
        /// The archive.
        archive: String,
        /// The layout.
        layout: String,
        /// The blob.
        digest: Digest,
    },
    /// A blob was asked of a local source that does not hold it.
    #[error("no local copy of blob {digest}")]
    BlobUnavailable {
        /// The blob.
        digest: Digest,
    },
    /// A blob's bytes do not check out.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// `bundle.json`, the directory and the sum lists do not agree.
    #[error("the bundle does not add up:\n  {}", problems.join("\n  "))]
    Inconsistent {
        /// One line per disagreement.
        problems: Vec<String>,
    },
    /// An archive file would overwrite one that is already there.
    #[error("{} already exists", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
}

/// Shorthand for an I/O error on a path.
pub(crate) fn io_error(
    action: &'static str,
    path: impl AsRef<std::path::Path>,
) -> impl FnOnce(std::io::Error) -> BundleError {
    let to_file_error = FileError::on(action, path);
    move |source| BundleError::Io(to_file_error(source))
}
