//! OCI image layouts on disk: `oci-layout`, `index.json` with tagged descriptors, and blobs in
//! a [`BlobStore`]. Every file is written atomically; nothing here talks HTTP.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::graph::{Graph, walk};
use crate::manifest::{
    Descriptor, MANIFEST_LIMIT, Manifest, ManifestError, OCI_INDEX, REF_NAME, SHORT_TAG,
};
use crate::store::{BlobStore, StoreError, write_atomic};

/// What can go wrong with a layout.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The directory is not an OCI image layout.
    #[error("{path} is not an OCI image layout ({reason})")]
    NotALayout {
        /// The directory.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// No descriptor carries the tag.
    #[error("{path} has no tag '{tag}' (tags: {available})")]
    TagNotFound {
        /// The layout.
        path: PathBuf,
        /// The tag asked for.
        tag: String,
        /// The tags it has.
        available: String,
    },
    /// A blob the graph needs is not in the layout.
    #[error("{path} lacks blob {digest}")]
    MissingBlob {
        /// The layout.
        path: PathBuf,
        /// The blob.
        digest: Digest,
    },
    /// A manifest in the layout cannot be used.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Reading or writing files failed, or content does not match its digest.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The `index.json` of a layout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// The OCI index media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The tagged (and untagged) entry points.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// Fields ferry does not interpret, kept as they are.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            manifests: Vec::new(),
            extra: serde_json::Map::new(),
        }
    }
}

/// The content of an `oci-layout` file.
pub const LAYOUT_MARKER: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// `descriptor` tagged for an `index.json`: the tag twice, as
/// `org.opencontainers.image.ref.name` (what skopeo and umoci read) and as
/// `io.deckhouse.image.short_tag` (what `d8 mirror push` reads).
pub fn tagged(tag: &str, descriptor: &Descriptor) -> Descriptor {
    let mut entry = descriptor.clone();
    entry
        .annotations
        .insert(REF_NAME.to_string(), tag.to_string());
    entry
        .annotations
        .insert(SHORT_TAG.to_string(), tag.to_string());
    entry
}

/// The bytes of an `index.json`, entries sorted by tag: the same entries always give the same
/// bytes.
pub fn index_bytes(index: &mut Index) -> Vec<u8> {
    index
        .manifests
        .sort_by(|a, b| entry_tag(a).cmp(&entry_tag(b)));
    let mut bytes = serde_json::to_vec_pretty(index).expect("an index serialises");
    bytes.push(b'\n');
    bytes
}

/// The tag an `index.json` entry stands for: ferry's and d8's `short_tag` first, else the
/// `ref.name`, of which only the part after the last `:` counts when it holds a full
/// reference (as d8 writes it).
pub fn entry_tag(descriptor: &Descriptor) -> Option<&str> {
    if let Some(tag) = descriptor.annotations.get(SHORT_TAG) {
        return Some(tag);
    }
    let name = descriptor.annotations.get(REF_NAME)?;
    let after_slash = name.rsplit('/').next().unwrap_or(name);
    Some(match after_slash.rsplit_once(':') {
        Some((_, tag)) => tag,
        None => name,
    })
}

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct OciLayout {
    root: PathBuf,
    store: BlobStore,
}

const LAYOUT_FILE: &str = "oci-layout";
/// The largest `index.json` read (thousands of tags fit in a few MiB).
const INDEX_LIMIT: u64 = 64 << 20;
const INDEX_FILE: &str = "index.json";

impl OciLayout {
    /// Opens an existing layout.
    pub async fn open(dir: &Path) -> Result<Self, LayoutError> {
        let marker = dir.join(LAYOUT_FILE);
        let text = tokio::fs::read(&marker)
            .await
            .map_err(|e| LayoutError::NotALayout {
                path: dir.to_path_buf(),
                reason: format!("cannot read {LAYOUT_FILE}: {e}"),
            })?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Marker {
            image_layout_version: String,
        }
        let marker: Marker =
            serde_json::from_slice(&text).map_err(|e| LayoutError::NotALayout {
                path: dir.to_path_buf(),
                reason: format!("{LAYOUT_FILE} is not valid: {e}"),
            })?;
        if !marker.image_layout_version.starts_with("1.") {
            return Err(LayoutError::NotALayout {
                path: dir.to_path_buf(),
                reason: format!(
                    "unsupported imageLayoutVersion {}",
                    marker.image_layout_version
                ),
            });
        }
        Ok(OciLayout {
            root: dir.to_path_buf(),
            store: BlobStore::new(dir),
        })
    }

    /// Opens a layout, creating the directory and its `oci-layout` file when missing.
    pub async fn create(dir: &Path) -> Result<Self, LayoutError> {
        if !dir.join(LAYOUT_FILE).exists() {
            write_atomic(&dir.join(LAYOUT_FILE), LAYOUT_MARKER).await?;
        }
        Self::open(dir).await
    }

    /// The layout directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The layout's blobs.
    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    /// Reads `index.json`; a layout without one is empty.
    pub async fn index(&self) -> Result<Index, LayoutError> {
        let path = self.root.join(INDEX_FILE);
        if let Ok(meta) = tokio::fs::metadata(&path).await
            && meta.len() > INDEX_LIMIT
        {
            return Err(LayoutError::NotALayout {
                path: self.root.clone(),
                reason: format!("{INDEX_FILE} is over {INDEX_LIMIT} bytes"),
            });
        }
        match tokio::fs::read(&path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| LayoutError::NotALayout {
                path: self.root.clone(),
                reason: format!("{INDEX_FILE} is not valid: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(StoreError::Io(crate::file_error::FileError {
                action: "cannot read",
                path,
                source: e,
            })
            .into()),
        }
    }

    /// The descriptor tagged `tag`.
    pub async fn resolve(&self, tag: &str) -> Result<Descriptor, LayoutError> {
        let index = self.index().await?;
        if let Some(found) = index.manifests.iter().find(|d| entry_tag(d) == Some(tag)) {
            return Ok(found.clone());
        }
        let mut tags: Vec<&str> = index.manifests.iter().filter_map(entry_tag).collect();
        tags.sort_unstable();
        Err(LayoutError::TagNotFound {
            path: self.root.clone(),
            tag: tag.to_string(),
            available: if tags.is_empty() {
                "none".into()
            } else {
                tags.join(", ")
            },
        })
    }

    /// Reads and verifies the manifest a descriptor points to.
    pub async fn read_manifest(&self, descriptor: &Descriptor) -> Result<Manifest, LayoutError> {
        let bytes = self
            .store
            .read_verified(&descriptor.digest, MANIFEST_LIMIT)
            .await
            .map_err(|e| self.missing(e, &descriptor.digest))?;
        Ok(Manifest::from_bytes(bytes, Some(&descriptor.media_type))?)
    }

    fn missing(&self, err: StoreError, digest: &Digest) -> LayoutError {
        match err {
            StoreError::Io(file) if file.source.kind() == std::io::ErrorKind::NotFound => {
                LayoutError::MissingBlob {
                    path: self.root.clone(),
                    digest: digest.clone(),
                }
            }
            other => other.into(),
        }
    }

    /// The whole graph behind a tag, every manifest verified against its digest, every blob
    /// checked for presence and size.
    pub async fn graph(&self, tag: &str) -> Result<Graph, LayoutError> {
        let root = self.resolve(tag).await?;
        let manifest = self.read_manifest(&root).await?;
        let graph = walk(manifest, async |d: &Descriptor| self.read_manifest(d).await).await?;
        for blob in &graph.blobs {
            if !self.store.contains(&blob.digest, blob.size).await {
                return Err(LayoutError::MissingBlob {
                    path: self.root.clone(),
                    digest: blob.digest.clone(),
                });
            }
        }
        Ok(graph)
    }

    /// Points `tag` at `descriptor` in `index.json`, replacing an earlier entry for the tag.
    /// The entry carries the tag twice: as `org.opencontainers.image.ref.name` (what skopeo
    /// and umoci read) and as `io.deckhouse.image.short_tag` (what `d8 mirror push` reads).
    pub async fn tag(&self, tag: &str, descriptor: &Descriptor) -> Result<(), LayoutError> {
        let mut index = self.index().await?;
        index.manifests.retain(|d| entry_tag(d) != Some(tag));
        index.manifests.push(tagged(tag, descriptor));
        write_atomic(&self.root.join(INDEX_FILE), &index_bytes(&mut index)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d8_full_references_yield_their_tag() {
        let digest = Digest::of(b"x");
        let mut d = Descriptor::new(OCI_INDEX, digest, 1);
        d.annotations.insert(
            REF_NAME.into(),
            "registry.example.com:5000/deckhouse/ee:v1.2.3".into(),
        );
        assert_eq!(entry_tag(&d), Some("v1.2.3"));
        d.annotations.insert(REF_NAME.into(), "stable".into());
        assert_eq!(entry_tag(&d), Some("stable"));
        d.annotations.insert(SHORT_TAG.into(), "alpha".into());
        assert_eq!(entry_tag(&d), Some("alpha"));
    }

    #[tokio::test]
    async fn tagging_replaces_and_keeps_both_annotations() {
        let dir = tempfile::tempdir().unwrap();
        let layout = OciLayout::create(dir.path()).await.unwrap();
        let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;
        let digest = layout.store().put_bytes(m).await.unwrap();
        let desc = Descriptor::new(crate::manifest::OCI_MANIFEST, digest, m.len() as u64);
        layout.tag("v1", &desc).await.unwrap();
        layout.tag("v1", &desc).await.unwrap();
        layout.tag("v0", &desc).await.unwrap();
        let index = layout.index().await.unwrap();
        assert_eq!(index.manifests.len(), 2);
        assert_eq!(entry_tag(&index.manifests[0]), Some("v0"));
        assert_eq!(index.manifests[1].annotations[SHORT_TAG], "v1");
        assert_eq!(index.manifests[1].annotations[REF_NAME], "v1");
        // The config blob is absent, so the graph is incomplete and says which blob.
        match layout.graph("v1").await {
            Err(LayoutError::MissingBlob { digest, .. }) => {
                assert_eq!(digest, Digest::of(b""))
            }
            other => panic!("expected a missing blob, got {other:?}"),
        }
        assert!(matches!(
            layout.resolve("nope").await,
            Err(LayoutError::TagNotFound { .. })
        ));
    }
}
