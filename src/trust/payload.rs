//! cosign's "simple signing" payload and where signatures sit: each layer of a signature
//! manifest is one signature, its blob the payload, its annotation the base64 signature.

use serde::Deserialize;

/// The media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature of the payload.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The artifact type of a signature manifest found through the OCI 1.1 referrers API.
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// The `critical.type` a container image signature carries.
const SIGNATURE_TYPE: &str = "cosign container image signature";
/// The largest payload read (real ones are a few hundred bytes).
pub const PAYLOAD_LIMIT: u64 = 64 << 10;

/// What a payload says was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// `critical.identity.docker-reference`.
    pub docker_reference: String,
    /// `critical.image.docker-manifest-digest`.
    pub manifest_digest: String,
}

#[derive(Deserialize)]
struct Document {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// Reads a payload (only after its signature verified: the bytes are the signer's).
pub fn parse(bytes: &[u8]) -> Result<Payload, String> {
    let document: Document =
        serde_json::from_slice(bytes).map_err(|e| format!("the payload is not cosign's: {e}"))?;
    if document.critical.kind != SIGNATURE_TYPE {
        return Err(format!(
            "the payload's critical.type is '{}', not '{SIGNATURE_TYPE}'",
            crate::report::printable(&document.critical.kind)
        ));
    }
    Ok(Payload {
        docker_reference: document.critical.identity.docker_reference,
        manifest_digest: document.critical.image.docker_manifest_digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosigns_payload_reads_and_other_types_do_not() {
        let text = br#"{"critical":{"identity":{"docker-reference":"r.example/a"},
            "image":{"docker-manifest-digest":"sha256:ab"},
            "type":"cosign container image signature"},"optional":null}"#;
        let payload = parse(text).unwrap();
        assert_eq!(payload.docker_reference, "r.example/a");
        assert_eq!(payload.manifest_digest, "sha256:ab");
        let other = String::from_utf8_lossy(text).replace("cosign container", "atomic container");
        assert!(
            parse(other.as_bytes())
                .unwrap_err()
                .contains("critical.type")
        );
        assert!(parse(b"{}").is_err());
    }
}
