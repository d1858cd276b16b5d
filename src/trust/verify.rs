//! An image held to a policy: the requirements of its scope, each of which must hold; a
//! `sigstoreSigned` requirement holds when one of the image's signatures verifies with one of
//! its keys over the payload, the payload names the image's manifest digest, and the signed
//! identity is one the requirement's `signedIdentity` accepts for the image's name.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;

use super::error::TrustError;
use super::identity::{DockerReference, SignedIdentity};
use super::keys::PublicKey;
use super::payload;
use super::policy::Policy;
use super::requirement::{KeySource, Requirement};
use crate::digest::Digest;

/// Why an image whose index `--platform` rewrote cannot be checked: its signatures name the
/// source's index, which the bundle does not hold.
pub const REWRITTEN_INDEX: &str = "--platform rewrote its index, and its signatures name the \
     index the source has, which the bundle does not hold; pull it without --platform";

/// One signature of an image, its payload read.
#[derive(Debug, Clone)]
pub struct ImageSignature {
    /// The payload's bytes, exactly as signed.
    pub payload: Vec<u8>,
    /// The base64 ECDSA signature of the payload.
    pub signature: String,
    /// Where it was found, for messages.
    pub found: String,
}

/// What the policy says of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Taken; by which scope of the policy.
    Accepted(String),
    /// Not taken, and why.
    Refused(String),
}

/// Holds images to one policy, reading each key file once.
pub struct Checker<'p> {
    policy: &'p Policy,
    keys: Mutex<HashMap<(String, usize), Vec<PublicKey>>>,
}

impl<'p> Checker<'p> {
    /// A checker of `policy`.
    pub fn new(policy: &'p Policy) -> Self {
        Checker {
            policy,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// The verdict on the image `image` whose manifest is `digest`, with the signatures found
    /// for it; `None` for an image not from a registry (a Helm chart read over HTTP), which the
    /// global `default` speaks for. An error means the policy itself cannot be used (a key
    /// file missing).
    pub fn check(
        &self,
        image: Option<&DockerReference>,
        digest: &Digest,
        signatures: &[ImageSignature],
    ) -> Result<Verdict, TrustError> {
        let (scope, requirements) = self.policy.requirements_for(image);
        for requirement in requirements {
            match requirement {
                Requirement::AcceptAnything => {}
                Requirement::Reject => {
                    return Ok(Verdict::Refused(format!("the policy's {scope} rejects it")));
                }
                Requirement::Unsupported { what } => {
                    return Ok(Verdict::Refused(what.clone()));
                }
                Requirement::Sigstore {
                    keys,
                    identity,
                    field,
                } => {
                    let keys = self.keys(keys, field)?;
                    if signatures.is_empty() {
                        return Ok(Verdict::Refused(format!(
                            "unsigned: no sigstore signature (no {}.sig tag, no referrer of \
                             type {}), and {field} requires one",
                            crate::referrer_tags::schema_tag(digest),
                            payload::SIGNATURE_ARTIFACT_TYPE
                        )));
                    }
                    let mut reasons = Vec::new();
                    let held =
                        signatures
                            .iter()
                            .any(|s| match one(s, &keys, identity, image, digest) {
                                Ok(()) => true,
                                Err(reason) => {
                                    reasons.push(format!("{}: {reason}", s.found));
                                    false
                                }
                            });
                    if !held {
                        return Ok(Verdict::Refused(format!(
                            "no signature satisfies {field}: {}",
                            reasons.join("; ")
                        )));
                    }
                }
            }
        }
        Ok(Verdict::Accepted(scope))
    }

    /// The keys of the requirement at `field`, read the first time they are needed.
    fn keys(&self, sources: &[KeySource], field: &str) -> Result<Vec<PublicKey>, TrustError> {
        let mut cache = self.keys.lock().expect("the key cache is not poisoned");
        let key = (field.to_string(), sources.len());
        if let Some(keys) = cache.get(&key) {
            return Ok(keys.clone());
        }
        let mut keys = Vec::new();
        for (i, source) in sources.iter().enumerate() {
            let fail = |name: &str, reason: String| TrustError::Policy {
                path: self.policy.file.clone(),
                field: if sources.len() > 1 {
                    format!("{field}.{name}s[{i}]")
                } else {
                    format!("{field}.{name}")
                },
                reason,
            };
            keys.push(match source {
                KeySource::Path(path) => {
                    PublicKey::read(path).map_err(|e| fail("keyPath", e.to_string()))?
                }
                KeySource::Data(pem) => {
                    PublicKey::from_pem(pem).map_err(|reason| fail("keyData", reason))?
                }
            });
        }
        cache.insert(key, keys.clone());
        Ok(keys)
    }
}

/// Why one signature does not satisfy a requirement, if it does not.
fn one(
    signature: &ImageSignature,
    keys: &[PublicKey],
    identity: &SignedIdentity,
    image: Option<&DockerReference>,
    digest: &Digest,
) -> Result<(), String> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature.signature.trim())
        .map_err(|_| "the signature annotation is not base64".to_string())?;
    if !keys.iter().any(|k| k.verifies(&signature.payload, &der)) {
        let names: Vec<String> = keys.iter().map(PublicKey::fingerprint).collect();
        return Err(format!(
            "not signed by the policy's key ({})",
            names.join(", ")
        ));
    }
    let payload = payload::parse(&signature.payload)?;
    if payload.manifest_digest != digest.to_string() {
        return Err(format!(
            "the payload names manifest {}, not this image's {digest}",
            crate::report::printable(&payload.manifest_digest)
        ));
    }
    let signed = DockerReference::parse(&payload.docker_reference)
        .map_err(|e| format!("the payload's docker-reference: {e}"))?;
    let Some(image) = image else {
        return Err(format!(
            "signed as '{signed}', and the image is not from a registry: no name to compare"
        ));
    };
    if !identity.accepts(image, &signed) {
        return Err(format!(
            "signed as '{signed}', which {} does not accept for '{image}'",
            identity.name()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::trust::PrivateKey;

    fn payload_for(reference: &str, digest: &Digest) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "critical": {"identity": {"docker-reference": reference},
                         "image": {"docker-manifest-digest": digest.to_string()},
                         "type": "cosign container image signature"},
            "optional": null,
        }))
        .unwrap()
    }

    fn signed(key: &PrivateKey, payload: &[u8]) -> ImageSignature {
        ImageSignature {
            payload: payload.to_vec(),
            signature: STANDARD.encode(key.sign(payload)),
            found: "tag x.sig".into(),
        }
    }

    fn policy(requirement: serde_json::Value) -> Policy {
        let text = serde_json::json!({"default": [requirement]}).to_string();
        Policy::from_bytes(text.as_bytes(), Path::new("p.json")).unwrap()
    }

    #[test]
    fn any_key_of_key_datas_may_have_signed_and_nothing_else_counts() {
        let (ours, theirs) = (PrivateKey::generate(), PrivateKey::generate());
        let data = |k: &PrivateKey| STANDARD.encode(k.public().to_pem());
        let p = policy(serde_json::json!({
            "type": "sigstoreSigned",
            "keyDatas": [data(&theirs), data(&ours)],
            "signedIdentity": {"type": "matchRepository"},
        }));
        let checker = Checker::new(&p);
        let image = DockerReference::parse("r.example/app:v1").unwrap();
        let digest = Digest::of(b"manifest");
        let good = payload_for("r.example/app", &digest);
        assert_eq!(
            checker
                .check(Some(&image), &digest, &[signed(&ours, &good)])
                .unwrap(),
            Verdict::Accepted("default".into())
        );
        let stranger = PrivateKey::generate();
        let refused = |signatures: &[ImageSignature]| match checker
            .check(Some(&image), &digest, signatures)
            .unwrap()
        {
            Verdict::Refused(reason) => reason,
            other => panic!("{other:?}"),
        };
        assert!(refused(&[signed(&stranger, &good)]).contains("not signed by the policy's key"));
        assert!(refused(&[]).starts_with("unsigned"));
        let mut tampered = signed(&ours, &good);
        tampered.payload = payload_for("r.example/app", &Digest::of(b"other"));
        assert!(refused(&[tampered]).contains("not signed by the policy's key"));
        let elsewhere = payload_for("r.example/app", &Digest::of(b"other"));
        assert!(refused(&[signed(&ours, &elsewhere)]).contains("names manifest"));
        let mut garbled = signed(&ours, &good);
        garbled.signature = "%%%".into();
        assert!(refused(&[garbled]).contains("not base64"));
        // One good signature among bad ones is enough.
        assert_eq!(
            checker
                .check(
                    Some(&image),
                    &digest,
                    &[signed(&stranger, &good), signed(&ours, &good)]
                )
                .unwrap(),
            Verdict::Accepted("default".into())
        );
    }

    #[test]
    fn an_image_not_from_a_registry_is_held_to_the_default_alone() {
        let digest = Digest::of(b"chart");
        let open = policy(serde_json::json!({"type": "insecureAcceptAnything"}));
        assert_eq!(
            Checker::new(&open).check(None, &digest, &[]).unwrap(),
            Verdict::Accepted("default".into())
        );
        let key = PrivateKey::generate();
        let strict = policy(serde_json::json!({
            "type": "sigstoreSigned",
            "keyData": STANDARD.encode(key.public().to_pem()),
            "signedIdentity": {"type": "matchRepository"},
        }));
        let payload = payload_for("r.example/chart", &digest);
        let Verdict::Refused(reason) = Checker::new(&strict)
            .check(None, &digest, &[signed(&key, &payload)])
            .unwrap()
        else {
            panic!("accepted")
        };
        assert!(reason.contains("not from a registry"), "{reason}");
    }

    #[test]
    fn a_private_key_as_key_data_is_named() {
        let key = PrivateKey::generate();
        let p = policy(serde_json::json!({
            "type": "sigstoreSigned",
            "keyData": STANDARD.encode(key.sealed(b"x")),
        }));
        let image = DockerReference::parse("r.example/app:v1").unwrap();
        let error = Checker::new(&p)
            .check(Some(&image), &Digest::of(b"m"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("p.json: default[0].keyData: this is a private key"),
            "{error}"
        );
    }
}
