//! ECDSA P-256 keys as files: public keys as PEM `PUBLIC KEY` (SubjectPublicKeyInfo), private
//! keys as the sigstore encrypted format, plain PKCS#8 (`openssl genpkey`) or SEC1
//! (`openssl ecparam -genkey`). Signatures are ASN.1 DER over SHA-256, as cosign makes them.

use std::io::Write;
use std::path::{Path, PathBuf};

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::der::pem;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use zeroize::Zeroizing;

use super::error::TrustError;
use super::sealed_key::{self, OpenError};
use crate::file_error::FileError;

/// The largest key file read: a PEM key is a few hundred bytes.
const KEY_FILE_LIMIT: u64 = 64 << 10;

/// A public key that checks signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

impl PublicKey {
    /// Reads a PEM public key file.
    pub fn read(path: &Path) -> Result<Self, TrustError> {
        let text = read_key_file(path)?;
        Self::from_pem(&text).map_err(|reason| TrustError::Key {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses PEM `PUBLIC KEY` text; the error says what the text is instead.
    pub fn from_pem(text: &[u8]) -> Result<Self, String> {
        let (label, der) = pem::decode_vec(text).map_err(|e| format!("not a PEM key ({e})"))?;
        match label {
            "PUBLIC KEY" => {}
            "PRIVATE KEY" | "EC PRIVATE KEY" | sealed_key::LABEL | sealed_key::COSIGN_LABEL => {
                return Err(
                    "this is a private key; a public key (PEM PUBLIC KEY, the .pub file) is \
                     needed here"
                        .into(),
                );
            }
            other => return Err(format!("a PEM '{other}' block, not a PUBLIC KEY")),
        }
        let key = p256::PublicKey::from_public_key_der(&der)
            .map_err(|_| format!("not an ECDSA P-256 public key ({})", public_algorithm(&der)))?;
        Ok(PublicKey {
            key: VerifyingKey::from(key),
        })
    }

    /// True when `signature` (ASN.1 DER) is this key's signature of `message` (over SHA-256).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        Signature::from_der(signature)
            .map(|s| self.key.verify(message, &s).is_ok())
            .unwrap_or(false)
    }

    /// The key as a PEM `PUBLIC KEY` (what `cosign public-key` prints).
    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .expect("a P-256 key encodes")
    }

    /// `sha256:` and the first 16 hex of the SHA-256 of the key's DER: how messages name a key.
    pub fn fingerprint(&self) -> String {
        let der = self.key.to_public_key_der().expect("a P-256 key encodes");
        let digest = crate::digest::Digest::of(der.as_bytes());
        format!("sha256:{}", &digest.hex()[..16])
    }
}

/// A private key that signs. Its bytes are never printed (`Debug` shows the public half).
#[derive(Clone)]
pub struct PrivateKey {
    key: SigningKey,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey(public {})", self.public().fingerprint())
    }
}

/// Gives the passphrase of an encrypted key, when one is needed; the error says why there is
/// none.
pub type PassphraseFn<'a> = &'a mut dyn FnMut() -> Result<Zeroizing<String>, String>;

impl PrivateKey {
    /// A new random key.
    pub fn generate() -> Self {
        PrivateKey {
            key: SigningKey::random(&mut rand_core::OsRng),
        }
    }

    /// Reads a private key file: the sigstore encrypted format (asking `passphrase`), plain
    /// PKCS#8 or SEC1 PEM.
    pub fn read(path: &Path, passphrase: PassphraseFn) -> Result<Self, TrustError> {
        let bad = |reason: String| TrustError::Key {
            path: path.to_path_buf(),
            reason,
        };
        let text = read_key_file(path)?;
        let (label, der) =
            pem::decode_vec(&text).map_err(|e| bad(format!("not a PEM key ({e})")))?;
        let der = Zeroizing::new(der);
        let key = match label {
            "PRIVATE KEY" => pkcs8_key(&der).map_err(bad)?,
            "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(&der)
                .map(SigningKey::from)
                .map_err(|_| bad("not an ECDSA P-256 key (SEC1 of another curve?)".into()))?,
            sealed_key::LABEL | sealed_key::COSIGN_LABEL => {
                let secret = passphrase().map_err(|reason| TrustError::NoPassphrase {
                    path: path.to_path_buf(),
                    reason,
                })?;
                let inner = sealed_key::open(&der, secret.as_bytes()).map_err(|e| match e {
                    OpenError::WrongPassphrase => TrustError::WrongPassphrase {
                        path: path.to_path_buf(),
                    },
                    OpenError::Format(reason) => bad(reason),
                })?;
                pkcs8_key(&inner).map_err(|reason| bad(format!("inside the envelope: {reason}")))?
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err(bad(
                    "an OpenSSL-encrypted PKCS#8 key; decrypt it (openssl pkcs8 -in KEY -out \
                     PLAIN) or make one with ferry keygen"
                        .into(),
                ));
            }
            "PUBLIC KEY" => {
                return Err(bad(
                    "this is a public key; signing needs the private key (the .key file)".into(),
                ));
            }
            other => return Err(bad(format!("a PEM '{other}' block, not a private key"))),
        };
        Ok(PrivateKey { key })
    }

    /// The ASN.1 DER ECDSA signature of `message` over SHA-256.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: Signature = self.key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            key: *self.key.verifying_key(),
        }
    }

    /// The key sealed under `passphrase`, as the text of a sigstore encrypted key file.
    pub fn sealed(&self, passphrase: &[u8]) -> String {
        let der = self.key.to_pkcs8_der().expect("a P-256 key encodes");
        sealed_key::seal(der.as_bytes(), passphrase)
    }
}

/// Writes `PREFIX.key` (the key sealed under `passphrase`, readable by its owner only) and
/// `PREFIX.pub`; neither may exist. Each is written whole under a temporary name and linked
/// into place only if the name is free; a failure leaves neither.
pub fn write_key_pair(
    prefix: &Path,
    key: &PrivateKey,
    passphrase: &[u8],
) -> Result<(PathBuf, PathBuf), TrustError> {
    let with = |ext: &str| {
        let mut name = prefix.as_os_str().to_owned();
        name.push(ext);
        PathBuf::from(name)
    };
    let (private, public) = (with(".key"), with(".pub"));
    for path in [&private, &public] {
        if path.symlink_metadata().is_ok() {
            return Err(TrustError::Exists { path: path.clone() });
        }
    }
    write_new(&private, key.sealed(passphrase).as_bytes(), 0o600)?;
    if let Err(e) = write_new(&public, key.public().to_pem().as_bytes(), 0o644) {
        let _ = std::fs::remove_file(&private);
        return Err(e);
    }
    Ok((private, public))
}

/// Writes a new file: a temporary file in the same directory, synced, then linked to `path`
/// only if nothing is there.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TrustError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
        .prefix(".ferry-tmp-")
        .tempfile_in(dir)
        .map_err(FileError::on("cannot create a file in", dir))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(FileError::on("cannot write", tmp.path()))?;
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            TrustError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            FileError::on("cannot create", path)(e.error).into()
        }
    })?;
    crate::store::fsync_dir(dir).map_err(FileError::on("cannot sync", dir))?;
    Ok(())
}

fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, TrustError> {
    // Named by the user or a policy: a link (a mounted secret, an alternatives entry) is
    // followed, as for TLS files.
    match crate::small_file::read_small_linked(path, KEY_FILE_LIMIT) {
        Ok(Some(bytes)) => Ok(Zeroizing::new(bytes)),
        Ok(None) => Err(FileError::other("cannot read", path, "no such file").into()),
        Err(e) => Err(FileError::on("cannot read", path)(e).into()),
    }
}

/// A P-256 key from PKCS#8 DER; the error names the algorithm found instead.
fn pkcs8_key(der: &[u8]) -> Result<SigningKey, String> {
    p256::SecretKey::from_pkcs8_der(der)
        .map(SigningKey::from)
        .map_err(|_| {
            let found = p256::pkcs8::PrivateKeyInfo::try_from(der)
                .map(|info| algorithm_name(&info.algorithm))
                .unwrap_or_else(|_| "not PKCS#8 at all".into());
            format!("not an ECDSA P-256 key ({found})")
        })
}

fn public_algorithm(der: &[u8]) -> String {
    p256::pkcs8::spki::SubjectPublicKeyInfoRef::try_from(der)
        .map(|info| algorithm_name(&info.algorithm))
        .unwrap_or_else(|_| "not a SubjectPublicKeyInfo".into())
}

/// A readable name for the key algorithms people are likely to hand over by mistake.
fn algorithm_name(algorithm: &p256::pkcs8::spki::AlgorithmIdentifierRef) -> String {
    let oid = algorithm.oid.to_string();
    let curve = algorithm.parameters_oid().ok().map(|o| o.to_string());
    match (oid.as_str(), curve.as_deref()) {
        ("1.2.840.113549.1.1.1", _) => "an RSA key".into(),
        ("1.3.101.112", _) => "an Ed25519 key".into(),
        ("1.3.101.113", _) => "an Ed448 key".into(),
        ("1.2.840.10045.2.1", Some("1.3.132.0.34")) => "an EC key on P-384".into(),
        ("1.2.840.10045.2.1", Some("1.3.132.0.35")) => "an EC key on P-521".into(),
        ("1.2.840.10045.2.1", Some("1.3.132.0.10")) => "an EC key on secp256k1".into(),
        ("1.2.840.10045.2.1", Some(curve)) => format!("an EC key on curve {curve}"),
        (oid, _) => format!("algorithm {oid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_with_its_key_only() {
        let key = PrivateKey::generate();
        let other = PrivateKey::generate();
        let signature = key.sign(b"message");
        let public = PublicKey::from_pem(key.public().to_pem().as_bytes()).unwrap();
        assert!(public.verifies(b"message", &signature));
        assert!(!public.verifies(b"messagf", &signature));
        assert!(!other.public().verifies(b"message", &signature));
        assert!(!public.verifies(b"message", b"not der"));
    }

    #[test]
    fn a_key_pair_is_written_once_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("ferry");
        let key = PrivateKey::generate();
        let (private, public) = write_key_pair(&prefix, &key, b"pass").unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&private).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let mut ask = || Ok(Zeroizing::new("pass".to_string()));
        let read = PrivateKey::read(&private, &mut ask).unwrap();
        assert_eq!(read.public(), key.public());
        assert_eq!(PublicKey::read(&public).unwrap(), key.public());
        assert!(matches!(
            write_key_pair(&prefix, &key, b"pass"),
            Err(TrustError::Exists { .. })
        ));
        let mut wrong = || Ok(Zeroizing::new("nope".to_string()));
        assert!(matches!(
            PrivateKey::read(&private, &mut wrong),
            Err(TrustError::WrongPassphrase { .. })
        ));
        assert!(!format!("{read:?}").contains("BEGIN"));
    }
}
