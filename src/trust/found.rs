//! Where the signatures of an image are: cosign's `sha256-<hex>.sig` tag beside it, and the
//! manifests of cosign's signature artifact type that refer to it (the OCI 1.1 referrers API,
//! which ferry carries as a `sha256-<hex>` tag-schema index). Each simple-signing layer of such
//! a manifest is one signature: its blob the payload, its annotation the signature.

use serde::Deserialize;

use super::payload::{SIGNATURE_ANNOTATION, SIGNATURE_ARTIFACT_TYPE, SIMPLE_SIGNING};
use crate::digest::Digest;
use crate::manifest::Manifest;
use crate::referrer_tags::schema_tag;

/// The manifests a plan or a bundle holds at the image's repository path.
pub trait Manifests {
    /// The manifest tagged `tag` beside the image, if there is one.
    fn tagged(&self, tag: &str) -> Option<Manifest>;
    /// A manifest by digest, if it is held.
    fn by_digest(&self, digest: &Digest) -> Option<Manifest>;
}

/// One signature layer: where its payload is and what signature it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    /// The payload blob.
    pub payload: Digest,
    /// Its size, as the layer's descriptor says.
    pub size: u64,
    /// The base64 signature of the payload.
    pub signature: String,
    /// Where it was found (`tag sha256-….sig`), for messages.
    pub found: String,
}

#[derive(Deserialize)]
struct SignatureManifest {
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct Layer {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: Digest,
    size: u64,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

/// Every signature layer of the image whose manifest is `subject`, each once.
pub fn signature_layers(subject: &Digest, held: &dyn Manifests) -> Vec<SignatureLayer> {
    let schema = schema_tag(subject);
    let mut manifests: Vec<(Manifest, String)> = Vec::new();
    let sig_tag = format!("{schema}.sig");
    if let Some(manifest) = held.tagged(&sig_tag) {
        manifests.push((manifest, format!("tag {sig_tag}")));
    }
    if let Some(index) = held.tagged(&schema)
        && let Ok(references) = index.references()
    {
        for entry in references.manifests.iter().filter(|d| {
            d.extra.get("artifactType").and_then(|v| v.as_str()) == Some(SIGNATURE_ARTIFACT_TYPE)
        }) {
            if let Some(manifest) = held.by_digest(&entry.digest) {
                manifests.push((manifest, format!("referrer {}", entry.digest.short())));
            }
        }
    }
    let mut layers: Vec<SignatureLayer> = Vec::new();
    for (manifest, found) in manifests {
        let Ok(parsed) = serde_json::from_slice::<SignatureManifest>(&manifest.bytes) else {
            continue;
        };
        for layer in parsed.layers {
            let Some(signature) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
                continue;
            };
            if layer.media_type != SIMPLE_SIGNING
                || layers
                    .iter()
                    .any(|l| l.payload == layer.digest && l.signature == *signature)
            {
                continue;
            }
            layers.push(SignatureLayer {
                payload: layer.digest,
                size: layer.size,
                signature: signature.clone(),
                found: found.clone(),
            });
        }
    }
    layers
}
