//! `--since-bundle OLD`: the earlier bundle a differential pull is made against, read from its
//! `bundle.json` alone (the directory, or just the file carried back).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::BundleError;
use super::metadata::{BUNDLE_FILE, BaseRecord, BundleMetadata};
use crate::digest::Digest;

/// Why an earlier bundle cannot be a base.
#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    /// Its `bundle.json` cannot be read.
    #[error(transparent)]
    Unreadable(#[from] BundleError),
    /// There is no `bundle.json` there.
    #[error(
        "{} does not exist; give the earlier bundle's directory or its bundle.json (a bundle \
         made by d8 has none)",
        file.display()
    )]
    Missing {
        /// The file looked for.
        file: PathBuf,
    },
    /// Its `bundle.json` lists no blobs to leave out.
    #[error(
        "{} lists no blobs (it was written by a ferry before 0.2); pull a full bundle instead",
        file.display()
    )]
    NoBlobs {
        /// The file.
        file: PathBuf,
    },
}

/// The earlier bundle, and every blob a target that took it has.
#[derive(Debug, Clone)]
pub struct Base {
    /// How the new `bundle.json` names it (its `left_out` is filled by the pull).
    pub record: BaseRecord,
    /// Blobs its archives hold or that it expected at the target, with sizes.
    pub held: BTreeMap<Digest, u64>,
}

impl Base {
    /// Reads `path`: a bundle directory or a `bundle.json`.
    pub fn read(path: &Path) -> Result<Base, BaseError> {
        let file = if path.is_dir() {
            path.join(BUNDLE_FILE)
        } else {
            path.to_path_buf()
        };
        let (metadata, sha256) = BundleMetadata::read_file(&file)?
            .ok_or_else(|| BaseError::Missing { file: file.clone() })?;
        if !metadata.lists_blobs() {
            return Err(BaseError::NoBlobs { file });
        }
        Ok(Base {
            held: metadata.blobs_at_target(),
            record: BaseRecord {
                bundle_sha256: sha256.hex().to_string(),
                created: metadata.created,
                source: metadata.source,
                left_out: Vec::new(),
            },
        })
    }
}
