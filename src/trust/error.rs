//! What can go wrong with keys, policies and signatures: each error names the file (and, for
//! a policy, the field) it concerns, and never the key's or passphrase's bytes.

use std::path::PathBuf;

use crate::file_error::FileError;

/// What can go wrong with keys, policies and signatures.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A file cannot be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// A key file that cannot be used: not PEM, another algorithm, a damaged envelope.
    #[error("{}: {reason}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An encrypted private key that the passphrase does not open.
    #[error("{}: wrong passphrase (the encrypted private key does not open with it)", path.display())]
    WrongPassphrase {
        /// The key file.
        path: PathBuf,
    },
    /// No passphrase could be had for an encrypted key.
    #[error("{}: a passphrase is needed and none was given ({reason})", path.display())]
    NoPassphrase {
        /// The key file.
        path: PathBuf,
        /// Why none was asked for.
        reason: String,
    },
    /// `keygen` would overwrite a file.
    #[error("{} exists; keygen never overwrites a key", path.display())]
    Exists {
        /// The file that exists.
        path: PathBuf,
    },
    /// A policy file that cannot be used, naming the field.
    #[error("{}: {field}: {reason}", path.display())]
    Policy {
        /// The policy file.
        path: PathBuf,
        /// Where in it (`transports.docker["host/repo"][0].signedIdentity.type`).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A bundle without `bundle.json.sig`.
    #[error("{} is not signed: {} is missing", dir.display(), super::BUNDLE_SIGNATURE_FILE)]
    Unsigned {
        /// The bundle directory.
        dir: PathBuf,
    },
    /// A bundle signature that does not hold.
    #[error("{}: {reason}", path.display())]
    BadBundleSignature {
        /// The signature file.
        path: PathBuf,
        /// Why it does not hold.
        reason: String,
    },
}
