//! The bundle's own signature: `bundle.json.sig` beside `bundle.json`, the base64 ECDSA P-256
//! signature of its bytes over SHA-256, exactly what `cosign sign-blob` writes, so that
//! `cosign verify-blob` and `openssl dgst -sha256 -verify` check it too. `bundle.json` names
//! every archive file with its SHA-256 (and GOST sum), so the signature covers the bundle.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::error::TrustError;
use super::keys::{PrivateKey, PublicKey};
use crate::bundle::{BUNDLE_FILE, BUNDLE_SIGNATURE};
use crate::file_error::FileError;

/// The signature file's name.
pub const BUNDLE_SIGNATURE_FILE: &str = BUNDLE_SIGNATURE;
/// The largest `bundle.json` signed or checked (as the bundle reader allows).
const METADATA_LIMIT: u64 = 128 << 20;
/// The largest signature file read (a DER P-256 signature is at most 72 bytes).
const SIGNATURE_LIMIT: u64 = 4 << 10;

/// The content of `bundle.json.sig` for a `bundle.json` of these bytes.
pub fn bundle_signature(key: &PrivateKey, metadata: &[u8]) -> String {
    STANDARD.encode(key.sign(metadata))
}

/// Signs the `bundle.json` already in `dir` with `key`, writing `bundle.json.sig` atomically.
pub fn sign_bundle(dir: &Path, key: &PrivateKey) -> Result<(), TrustError> {
    let metadata = read(&dir.join(BUNDLE_FILE), METADATA_LIMIT)?;
    let signature = bundle_signature(key, &metadata);
    let path = dir.join(BUNDLE_SIGNATURE);
    crate::store::write_atomic_blocking(&path, signature.as_bytes())
        .map_err(|e| TrustError::File(FileError::other("cannot write", &path, e.to_string())))
}

/// Checks that `bundle.json.sig` in `dir` is `key`'s signature of the `bundle.json` there:
/// refused when there is no signature, when another key made it, or when `bundle.json`
/// changed since. Reads those two files and nothing else; returns the bytes of `bundle.json`
/// it checked, for the caller to use rather than read the file again.
pub fn check_bundle_signature(dir: &Path, key: &PublicKey) -> Result<Vec<u8>, TrustError> {
    let sig_path = dir.join(BUNDLE_SIGNATURE);
    let text = match crate::small_file::read_small(&sig_path, SIGNATURE_LIMIT) {
        Ok(Some(text)) => text,
        Ok(None) => {
            return Err(TrustError::Unsigned {
                dir: dir.to_path_buf(),
            });
        }
        Err(e) => return Err(FileError::on("cannot read", &sig_path)(e).into()),
    };
    let bad = |reason: String| TrustError::BadBundleSignature {
        path: sig_path.clone(),
        reason,
    };
    let der = STANDARD
        .decode(String::from_utf8_lossy(&text).trim())
        .map_err(|e| bad(format!("not base64 ({e})")))?;
    let metadata = read(&dir.join(BUNDLE_FILE), METADATA_LIMIT)?;
    if !key.verifies(&metadata, &der) {
        return Err(bad(format!(
            "does not verify with key {}: bundle.json changed after it was signed, or another \
             key signed it",
            key.fingerprint()
        )));
    }
    Ok(metadata)
}

fn read(path: &Path, limit: u64) -> Result<Vec<u8>, TrustError> {
    match crate::small_file::read_small(path, limit) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(FileError::other("cannot read", path, "no such file").into()),
        Err(e) => Err(FileError::on("cannot read", path)(e).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_bundle_json_checks_until_a_byte_changes() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate();
        std::fs::write(dir.path().join(BUNDLE_FILE), b"{\"a\":1}").unwrap();
        assert!(matches!(
            check_bundle_signature(dir.path(), &key.public()),
            Err(TrustError::Unsigned { .. })
        ));
        sign_bundle(dir.path(), &key).unwrap();
        check_bundle_signature(dir.path(), &key.public()).unwrap();
        let other = PrivateKey::generate();
        assert!(check_bundle_signature(dir.path(), &other.public()).is_err());
        std::fs::write(dir.path().join(BUNDLE_FILE), b"{\"a\":2}").unwrap();
        assert!(check_bundle_signature(dir.path(), &key.public()).is_err());
    }
}
