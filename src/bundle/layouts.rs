//! The OCI layouts inside an archive, seen through its tar index: their `index.json`, tags,
//! manifests and blobs, read in place. Tags come from `io.deckhouse.image.short_tag`, else from
//! the tag part of `org.opencontainers.image.ref.name` (which d8 fills with a full reference).

use std::collections::BTreeMap;

use super::BundleError;
use super::index::{EntryLocation, TarIndex};
use super::metadata::ImageRecord;
use super::reader::Archive;
use crate::digest::Digest;
use crate::graph::{Graph, walk};
use crate::layout::{Index, entry_tag};
use crate::manifest::{Descriptor, INDEX_LIMIT, MANIFEST_LIMIT, Manifest};
use crate::reference::join;
use crate::segment::BlobSource;

const LAYOUT_MARKER: &str = "oci-layout";
const INDEX_FILE: &str = "index.json";

/// One layout inside an archive.
#[derive(Debug, Clone)]
pub struct BundleLayout {
    /// Its directory inside the archive, which is also its repository path under the target
    /// root ("" for the archive root).
    pub path: String,
    /// Its `index.json`.
    pub index: Index,
}

/// An archive's index and the layouts it holds.
#[derive(Debug, Clone)]
pub struct ArchiveLayouts {
    /// The archive's name.
    pub archive: String,
    /// Where every entry is.
    pub index: TarIndex,
    /// The layouts, sorted by path.
    pub layouts: Vec<BundleLayout>,
}

impl ArchiveLayouts {
    /// Indexes `archive` and reads the `index.json` of every layout in it.
    pub fn open(archive: &Archive) -> Result<ArchiveLayouts, BundleError> {
        Self::with_index(archive, TarIndex::read(archive)?)
    }

    /// Reads the `index.json` of every layout of an archive already indexed.
    pub fn with_index(archive: &Archive, index: TarIndex) -> Result<ArchiveLayouts, BundleError> {
        let bad = |layout: &str, reason: String| BundleError::BadLayout {
            archive: archive.name.clone(),
            layout: layout.to_string(),
            reason,
        };
        let mut layouts = Vec::new();
        for (path, location) in index.entries() {
            let dir = match path.strip_suffix(INDEX_FILE) {
                Some("") => "",
                Some(prefix) if prefix.ends_with('/') => prefix.trim_end_matches('/'),
                _ => continue,
            };
            if index.get(&join(dir, LAYOUT_MARKER)).is_none() {
                return Err(bad(dir, format!("{INDEX_FILE} without {LAYOUT_MARKER}")));
            }
            let bytes = index
                .read_small(location, INDEX_LIMIT)
                .map_err(|e| bad(dir, format!("cannot read {INDEX_FILE}: {e}")))?;
            let parsed: Index = serde_json::from_slice(&bytes)
                .map_err(|e| bad(dir, format!("{INDEX_FILE} is not valid: {e}")))?;
            // Paths and tags become URLs at push: they must be what a registry accepts.
            if !dir.is_empty() {
                crate::reference::validate_repository(dir)
                    .map_err(|e| bad(dir, crate::report::printable(&e)))?;
            }
            for descriptor in &parsed.manifests {
                if let Some(tag) = entry_tag(descriptor) {
                    crate::reference::validate_tag(tag).map_err(|e| {
                        bad(
                            dir,
                            format!("{INDEX_FILE}: {}", crate::report::printable(&e)),
                        )
                    })?;
                }
            }
            layouts.push(BundleLayout {
                path: dir.to_string(),
                index: parsed,
            });
        }
        Ok(ArchiveLayouts {
            archive: archive.name.clone(),
            index,
            layouts,
        })
    }

    /// Where a layout's blob is in the archive.
    pub fn blob_location(&self, layout: &str, digest: &Digest) -> Option<EntryLocation> {
        self.index.get(&join(
            layout,
            &format!("blobs/{}/{}", digest.algorithm(), digest.hex()),
        ))
    }

    /// The bytes of a layout's blob, ready to stream.
    pub fn blob(&self, layout: &str, digest: &Digest) -> Option<BlobSource> {
        self.blob_location(layout, digest)
            .map(|location| self.index.bytes_of(location))
    }

    /// Reads a manifest of a layout and checks it against its descriptor.
    pub fn read_manifest(
        &self,
        layout: &str,
        descriptor: &Descriptor,
    ) -> Result<Manifest, BundleError> {
        let missing = || BundleError::MissingBlob {
            archive: self.archive.clone(),
            layout: layout.to_string(),
            digest: descriptor.digest.clone(),
        };
        let location = self
            .blob_location(layout, &descriptor.digest)
            .ok_or_else(missing)?;
        let bytes = self
            .index
            .read_small(location, MANIFEST_LIMIT)
            .map_err(|e| BundleError::BadLayout {
                archive: self.archive.clone(),
                layout: layout.to_string(),
                reason: format!("cannot read manifest {}: {e}", descriptor.digest),
            })?;
        if Digest::of(&bytes) != descriptor.digest {
            return Err(BundleError::BadLayout {
                archive: self.archive.clone(),
                layout: layout.to_string(),
                reason: format!("manifest {} does not match its digest", descriptor.digest),
            });
        }
        if bytes.len() as u64 != descriptor.size {
            return Err(BundleError::BadLayout {
                archive: self.archive.clone(),
                layout: layout.to_string(),
                reason: format!(
                    "manifest {} is {} bytes, its descriptor says {}",
                    descriptor.digest,
                    bytes.len(),
                    descriptor.size
                ),
            });
        }
        Manifest::from_bytes(bytes, Some(&descriptor.media_type)).map_err(|e| {
            BundleError::BadLayout {
                archive: self.archive.clone(),
                layout: layout.to_string(),
                reason: e.to_string(),
            }
        })
    }

    /// Follows one tagged descriptor through its manifests, checks that every blob is in the
    /// layout with its size (or among the blobs a differential bundle left out), and describes
    /// the tag, with its graph. `None` for an untagged descriptor.
    pub async fn image(
        &self,
        layout: &BundleLayout,
        descriptor: &Descriptor,
        left_out: &BTreeMap<Digest, u64>,
    ) -> Result<Option<(ImageRecord, Graph)>, BundleError> {
        let Some(tag) = entry_tag(descriptor) else {
            return Ok(None);
        };
        let root = self.read_manifest(&layout.path, descriptor)?;
        let media_type = root.media_type.clone();
        let graph = walk(root, async |d: &Descriptor| {
            self.read_manifest(&layout.path, d)
        })
        .await?;
        for blob in &graph.blobs {
            match self.blob_location(&layout.path, &blob.digest) {
                Some(location) if location.size == blob.size => {}
                None if left_out.get(&blob.digest) == Some(&blob.size) => {}
                Some(location) => {
                    return Err(BundleError::BadLayout {
                        archive: self.archive.clone(),
                        layout: layout.path.clone(),
                        reason: format!(
                            "blob {} is {} bytes, its manifest says {}",
                            blob.digest, location.size, blob.size
                        ),
                    });
                }
                None => {
                    return Err(BundleError::MissingBlob {
                        archive: self.archive.clone(),
                        layout: layout.path.clone(),
                        digest: blob.digest.clone(),
                    });
                }
            }
        }
        let image = ImageRecord {
            path: layout.path.clone(),
            tag: tag.to_string(),
            digest: descriptor.digest.clone(),
            media_type,
            size: graph.total_bytes(),
            archive: Some(self.archive.clone()),
            source: None,
            mirror: None,
            source_digest: None,
        };
        Ok(Some((image, graph)))
    }

    /// Every tag of every layout in the archive.
    pub async fn images(&self) -> Result<Vec<ImageRecord>, BundleError> {
        let mut images = Vec::new();
        for layout in &self.layouts {
            for descriptor in &layout.index.manifests {
                if let Some((image, _)) = self.image(layout, descriptor, &BTreeMap::new()).await? {
                    images.push(image);
                }
            }
        }
        Ok(images)
    }
}
