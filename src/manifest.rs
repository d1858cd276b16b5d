//! Manifests as raw bytes plus what ferry needs to know of them: their media type and the
//! descriptors they point to. Digests are over bytes, so manifests are never re-serialised.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The media types a registry takes a manifest as; a document of any other is refused at PUT.
/// (The OCI artifact manifest of the image-spec 1.1 drafts has no `schemaVersion`: it was
/// dropped from the final spec, and neither skopeo nor distribution takes it.)
pub const MANIFEST_TYPES: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// The `Accept` value for manifest requests. Registry 2.8 answers 404 for an OCI manifest, and
/// 400 for a Docker one, unless its type is listed, so every request names all four.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Manifests are small (the distribution spec lets registries refuse more than 4 MiB); anything
/// bigger is refused instead of read into memory.
pub const MANIFEST_LIMIT: u64 = 4 << 20;
/// The largest file size a bundle record may claim (1 PiB): more is refused, so that no sum of
/// sizes can overflow. Blob descriptors are held to `graph::MAX_BLOB_SIZE`.
pub const SIZE_LIMIT: u64 = 1 << 50;
/// The largest layout `index.json` a bundle reader takes: ferry writes one per repository
/// path, a descriptor per tag (some 60,000 tags).
pub const INDEX_LIMIT: u64 = 16 << 20;

/// Annotation holding the tag of an entry in a layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation `d8 mirror` reads for the tag to push; ferry writes it too.
pub const SHORT_TAG: &str = "io.deckhouse.image.short_tag";

/// An OCI content descriptor. Fields ferry does not know are kept, so a descriptor read from
/// one `index.json` can be written to another unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the content.
    pub media_type: String,
    /// Digest of the content.
    pub digest: Digest,
    /// Size of the content in bytes.
    pub size: u64,
    /// Annotations, sorted for stable output.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Every other field (`platform`, `artifactType`, `urls`, …), untouched.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Descriptor {
    /// A plain descriptor without annotations.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            annotations: BTreeMap::new(),
            extra: serde_json::Map::new(),
        }
    }
}

/// Why manifest bytes cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON, or JSON without the expected shape.
    #[error("manifest {digest} is not valid: {reason}")]
    Invalid {
        /// The manifest.
        digest: Digest,
        /// What is wrong.
        reason: String,
    },
    /// An index of indexes of … deeper or wider than any real image.
    #[error("manifest {digest}: {reason}; refusing to follow it")]
    TooBig {
        /// The root of the graph.
        digest: Digest,
        /// Which limit it broke.
        reason: String,
    },
    /// A Docker schema 1 manifest: signed over a re-serialised form and long deprecated.
    #[error(
        "manifest {digest} is Docker schema 1, which ferry does not carry (convert it to schema 2 or OCI first)"
    )]
    Schema1 {
        /// The manifest.
        digest: Digest,
    },
}

/// A manifest or index exactly as the registry sent it.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The bytes the digest is computed over; shared, not copied, by whatever else holds them
    /// (a plan, its archive entries).
    pub bytes: Bytes,
    /// The media type (from the document, else from the transport's `Content-Type`).
    pub media_type: String,
    /// The sha256 of `bytes`.
    pub digest: Digest,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shape {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    subject: Option<Descriptor>,
    #[serde(default)]
    fs_layers: Option<serde_json::Value>,
}

/// What a manifest points to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct References {
    /// Child manifests of an index.
    pub manifests: Vec<Descriptor>,
    /// Config and layers of an image manifest.
    pub blobs: Vec<Descriptor>,
    /// The manifest this one refers to (OCI 1.1 referrers), if any.
    pub subject: Option<Descriptor>,
}

impl Manifest {
    /// Wraps bytes received from a registry or read from a layout. The media type comes from
    /// the document itself when it has one, else from `content_type` (the HTTP header or the
    /// descriptor), else from its shape.
    pub fn from_bytes(
        mut bytes: Vec<u8>,
        content_type: Option<&str>,
    ) -> Result<Self, ManifestError> {
        // Read bodies grow by doubling: what a plan of thousands keeps is only the bytes.
        bytes.shrink_to_fit();
        let bytes = Bytes::from(bytes);
        let digest = Digest::of(&bytes);
        let shape: Shape = serde_json::from_slice(&bytes).map_err(|e| ManifestError::Invalid {
            digest: digest.clone(),
            reason: e.to_string(),
        })?;
        if shape.schema_version == Some(1) || shape.fs_layers.is_some() {
            return Err(ManifestError::Schema1 { digest });
        }
        let declared = shape
            .media_type
            .clone()
            .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string()))
            .filter(|m| !m.is_empty() && m != "application/json" && m != "text/plain");
        let invalid = |reason: String| ManifestError::Invalid {
            digest: digest.clone(),
            reason,
        };
        let media_type = match declared {
            Some(m) => m,
            None if shape.manifests.is_some() => OCI_INDEX.to_string(),
            None if shape.config.is_some() || shape.layers.is_some() => OCI_MANIFEST.to_string(),
            None => {
                return Err(invalid(
                    "neither a manifest nor an index: no mediaType, manifests or config".into(),
                ));
            }
        };
        // What a registry's PUT takes: it becomes a Content-Type header, and the shape must be
        // that of a manifest (a config blob listed as an index's child is not one).
        if !is_media_type(&media_type) {
            return Err(invalid(format!(
                "its media type '{}' is not a media type",
                crate::report::printable(&media_type)
            )));
        }
        if shape.schema_version != Some(2) {
            return Err(invalid("schemaVersion is not 2".into()));
        }
        if !MANIFEST_TYPES.contains(&media_type.as_str()) {
            return Err(invalid(format!(
                "it is typed {media_type}, which no registry takes as a manifest (an OCI or \
                 Docker image manifest or index)"
            )));
        }
        // A registry reads an index's children and an image manifest's config and layers,
        // nothing else, and refuses a document shaped as both (distribution since
        // CVE-2021-41190: an index with config or layers, an OCI manifest with manifests).
        let index = is_index_type(&media_type);
        let shaped = if index {
            shape.manifests.is_some()
        } else {
            shape.config.is_some()
        };
        if !shaped {
            return Err(invalid(format!(
                "it is typed {media_type} but has no {}",
                if index { "manifests" } else { "config" }
            )));
        }
        let both = if index {
            shape.config.is_some() || shape.layers.is_some()
        } else {
            media_type == OCI_MANIFEST && shape.manifests.is_some()
        };
        if both {
            return Err(invalid(format!(
                "it is typed {media_type} but has {}, which a registry refuses as ambiguous",
                if index {
                    "config or layers"
                } else {
                    "manifests"
                }
            )));
        }
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// True for an index or manifest list (its children are manifests, not blobs).
    pub fn is_index(&self) -> bool {
        is_index_type(&self.media_type)
    }

    /// The descriptors this manifest points to.
    pub fn references(&self) -> Result<References, ManifestError> {
        let shape: Shape =
            serde_json::from_slice(&self.bytes).map_err(|e| ManifestError::Invalid {
                digest: self.digest.clone(),
                reason: e.to_string(),
            })?;
        // What the registry reads of it, by its type (see `from_bytes`).
        let mut refs = References {
            subject: shape.subject,
            ..References::default()
        };
        if self.is_index() {
            refs.manifests = shape.manifests.unwrap_or_default();
        } else {
            refs.blobs.extend(shape.config);
            refs.blobs.extend(shape.layers.unwrap_or_default());
        }
        Ok(refs)
    }

    /// A descriptor for this manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.media_type.clone(),
            self.digest.clone(),
            self.bytes.len() as u64,
        )
    }
}

/// `type/subtype` of the characters RFC 6838 allows, at most 255 of them (parameters after a
/// `;` are not part of a manifest's media type).
fn is_media_type(text: &str) -> bool {
    let token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    text.len() <= 255
        && text
            .split_once('/')
            .is_some_and(|(kind, sub)| token(kind) && token(sub))
}

/// True for the index media types (OCI index, Docker manifest list).
pub fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    const LAYER: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn what_a_registry_would_not_take_as_a_manifest_is_refused() {
        let config = format!(r#"{{"mediaType":"a/b","digest":"{CONFIG}","size":2}}"#);
        for (raw, says) in [
            // A config blob listed as an index's child: JSON, but no manifest.
            (
                r#"{"architecture":"amd64","os":"linux"}"#.to_string(),
                "schemaVersion is not 2",
            ),
            (
                format!(r#"{{"schemaVersion":2,"mediaType":"a\u001b[31mb/c","config":{config}}}"#),
                "is not a media type",
            ),
            (
                format!(r#"{{"mediaType":"{OCI_MANIFEST}","config":{config}}}"#),
                "schemaVersion is not 2",
            ),
            (
                format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","config":{config}}}"#),
                "has no manifests",
            ),
            (
                format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","layers":[]}}"#),
                "has no config",
            ),
            // The drafts' artifact shape and an index's shape under an image manifest's type:
            // a registry reads neither.
            (
                format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","blobs":[{config}]}}"#),
                "has no config",
            ),
            (
                format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","manifests":[]}}"#),
                "has no config",
            ),
            // Shaped as both, which a registry refuses as ambiguous.
            (
                format!(
                    r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{config},"manifests":[]}}"#
                ),
                "has manifests",
            ),
            (
                format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[],"layers":[]}}"#),
                "has config or layers",
            ),
            // A config typed as itself, shaped as an empty index.
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.config.v1+json","manifests":[]}"#
                    .to_string(),
                "which no registry takes as a manifest",
            ),
        ] {
            let err = Manifest::from_bytes(raw.clone().into_bytes(), Some(OCI_MANIFEST))
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{raw}: {err}");
            assert!(!err.contains('\u{1b}'), "{err}");
        }
    }

    #[test]
    fn an_artifact_keeps_its_media_types_and_unknown_fields() {
        let raw = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/x-db",
            "config":{{"mediaType":"application/x-db-config","digest":"{CONFIG}","size":2}},
            "layers":[{{"mediaType":"application/x-db-layer","digest":"{LAYER}","size":0,
            "annotations":{{"org.opencontainers.image.title":"db.tar.gz"}},"urls":["x"]}}]}}"#
        );
        let m = Manifest::from_bytes(raw.clone().into_bytes(), None).unwrap();
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert_eq!(m.digest, Digest::of(raw.as_bytes()));
        let refs = m.references().unwrap();
        assert_eq!(refs.blobs.len(), 2);
        assert_eq!(refs.blobs[0].media_type, "application/x-db-config");
        assert_eq!(refs.blobs[1].extra["urls"], serde_json::json!(["x"]));
        let again: Descriptor =
            serde_json::from_str(&serde_json::to_string(&refs.blobs[1]).unwrap()).unwrap();
        assert_eq!(again, refs.blobs[1]);
    }

    #[test]
    fn media_type_falls_back_to_the_header_then_to_the_shape() {
        let index = br#"{"schemaVersion":2,"manifests":[]}"#.to_vec();
        let m = Manifest::from_bytes(index.clone(), Some(DOCKER_LIST)).unwrap();
        assert_eq!(m.media_type, DOCKER_LIST);
        assert!(m.is_index());
        let m = Manifest::from_bytes(index, Some("application/json")).unwrap();
        assert_eq!(m.media_type, OCI_INDEX);
    }

    #[test]
    fn schema1_and_garbage_are_refused() {
        let s1 = br#"{"schemaVersion":1,"fsLayers":[]}"#.to_vec();
        assert!(matches!(
            Manifest::from_bytes(s1, None),
            Err(ManifestError::Schema1 { .. })
        ));
        assert!(Manifest::from_bytes(b"<html>".to_vec(), None).is_err());
        assert!(Manifest::from_bytes(b"{}".to_vec(), None).is_err());
    }
}
