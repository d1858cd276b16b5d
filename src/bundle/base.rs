//! `--since-bundle OLD`: the earlier bundle a differential pull is made against, read from its
//! `bundle.json` alone (the directory, or just the file carried back).

use std::collections::BTreeMap;
use std::path::Path;

use super::metadata::{BUNDLE_FILE, BaseRecord, BundleMetadata};
use crate::digest::Digest;

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
    pub fn read(path: &Path) -> Result<Base, String> {
        let file = if path.is_dir() {
            path.join(BUNDLE_FILE)
        } else {
            path.to_path_buf()
        };
        let (metadata, sha256) = BundleMetadata::read_file(&file)
            .map_err(|e| format!("--since-bundle: {e}"))?
            .ok_or_else(|| {
                format!(
                    "--since-bundle: {} does not exist; give the earlier bundle's directory or \
                     its bundle.json (a bundle made by d8 has none)",
                    file.display()
                )
            })?;
        if metadata.archives.iter().all(|a| a.blobs.is_empty()) {
            return Err(format!(
                "--since-bundle: {} lists no blobs (it was written by a ferry before 0.2); \
                 pull a full bundle instead",
                file.display()
            ));
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
