//! Where the signatures of an image are: cosign's `sha256-<hex>.sig` tag beside it, and the
//! manifests of cosign's signature artifact type that refer to it (the OCI 1.1 referrers API,
//! which ferry carries as a `sha256-<hex>` tag-schema index). Each simple-signing layer of such
//! a manifest is one signature: its blob the payload, its annotation the signature.

use serde::Deserialize;

use super::payload::{SIGNATURE_ANNOTATION, SIGNATURE_ARTIFACT_TYPE, SIMPLE_SIGNING};
use crate::digest::Digest;
use crate::manifest::Manifest;
use crate::referrer_tags::schema_tag;

/// The most signatures looked at for one image: real images have one or a few, and a source
/// must not make a pull fetch thousands of payloads for one tag.
pub const MAX_SIGNATURES: usize = 32;

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

/// Every signature layer of the image whose manifest is `subject`, each once, the first
/// [`MAX_SIGNATURES`] of them.
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
            if layers.len() == MAX_SIGNATURES {
                return layers;
            }
        }
    }
    layers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::OCI_MANIFEST;

    struct Tagged(Vec<(String, Manifest)>);

    impl Manifests for Tagged {
        fn tagged(&self, tag: &str) -> Option<Manifest> {
            self.0
                .iter()
                .find(|(t, _)| t == tag)
                .map(|(_, m)| m.clone())
        }
        fn by_digest(&self, digest: &Digest) -> Option<Manifest> {
            self.0
                .iter()
                .find(|(_, m)| m.digest == *digest)
                .map(|(_, m)| m.clone())
        }
    }

    fn signature_manifest(layers: usize, media_type: &str) -> Manifest {
        let layers: Vec<serde_json::Value> = (0..layers)
            .map(|i| {
                serde_json::json!({
                    "mediaType": media_type,
                    "digest": Digest::of(format!("payload {i}").as_bytes()),
                    "size": 10,
                    "annotations": {SIGNATURE_ANNOTATION: format!("sig{i}")},
                })
            })
            .collect();
        let document = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": Digest::of(b"{}"), "size": 2},
            "layers": layers,
        });
        Manifest::from_bytes(serde_json::to_vec(&document).unwrap(), Some(OCI_MANIFEST)).unwrap()
    }

    #[test]
    fn signature_layers_are_found_capped_and_only_of_cosigns_type() {
        let subject = Digest::of(b"image");
        let tag = format!("{}.sig", schema_tag(&subject));
        let held = Tagged(vec![(tag.clone(), signature_manifest(3, SIMPLE_SIGNING))]);
        let found = signature_layers(&subject, &held);
        assert_eq!(found.len(), 3);
        assert_eq!(found[1].signature, "sig1");
        assert_eq!(found[0].found, format!("tag {tag}"));
        let many = Tagged(vec![(
            tag.clone(),
            signature_manifest(1000, SIMPLE_SIGNING),
        )]);
        assert_eq!(signature_layers(&subject, &many).len(), MAX_SIGNATURES);
        let other = Tagged(vec![(tag, signature_manifest(2, "application/x-other"))]);
        assert!(signature_layers(&subject, &other).is_empty());
        assert!(signature_layers(&Digest::of(b"another"), &held).is_empty());
    }
}
