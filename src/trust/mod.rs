//! Trust across the gap: image signatures checked by a `containers-policy.json` (sigstore
//! signatures made with a key, as cosign and skopeo write them), and the bundle itself signed
//! the way `cosign sign-blob` signs a file. The formats are the shared ones, so one key and one
//! policy file serve ferry, cosign, skopeo and podman.
//!
//! Nothing here talks to a registry: the pull finds signatures at the source and hands them
//! over ([`ImageSignature`]); verify and push find them in the bundle ([`in_bundle`]).

pub mod bundle_sig;
mod error;
mod found;
mod identity;
pub mod in_bundle;
mod keys;
mod payload;
mod policy;
mod requirement;
mod sealed_key;
mod verify;

pub use bundle_sig::{
    BUNDLE_SIGNATURE_FILE, bundle_signature, check_bundle_signature, sign_bundle,
};
pub use error::TrustError;
pub use found::{Manifests, SignatureLayer, signature_layers};
pub use identity::{DockerReference, SignedIdentity};
pub use keys::{PassphraseFn, PrivateKey, PublicKey, write_key_pair};
pub use payload::PAYLOAD_LIMIT;
pub use payload::{SIGNATURE_ANNOTATION, SIGNATURE_ARTIFACT_TYPE, SIMPLE_SIGNING};
pub use policy::Policy;
pub use requirement::{KeySource, Requirement};
pub use verify::{Checker, ImageSignature, REWRITTEN_INDEX, Verdict};
