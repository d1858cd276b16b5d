//! What the binary says about keys, signatures and policies: `ferry keygen` run from its
//! arguments, and the lines `pull` and `verify` add when keys or a policy were given. Kept
//! beside `main.rs` (the edge prints; the library never does).

use std::path::Path;

use ferry::pull::PullOptions;
use ferry::trust::{BUNDLE_SIGNATURE_FILE, PrivateKey, TrustError, write_key_pair};
use ferry::verify::VerifyReport;

/// `ferry keygen PREFIX`: the passphrase from the environment or the terminal, a new key,
/// both files written; the line that says so.
pub fn keygen(prefix: &Path) -> Result<String, TrustError> {
    let mut key_path = prefix.as_os_str().to_owned();
    key_path.push(".key");
    let passphrase = ferry::settings::new_key_passphrase(Path::new(&key_path))?;
    let key = PrivateKey::generate();
    let (private, public) = write_key_pair(prefix, &key, passphrase.as_bytes())?;
    Ok(format!(
        "wrote {} (encrypted private key) and {} (public key {})",
        private.display(),
        public.display(),
        key.public().fingerprint()
    ))
}

/// The warning for a policy checked offline without `--key`: which scope of the policy an
/// image falls in, and what identity its signature must name, come from the image names in
/// `bundle.json`, and only its signature protects them.
pub const UNSIGNED_NAMES: &str = "the policy was applied to the image names bundle.json gives, \
     and without --key nothing shows that bundle.json is the pull host's: an edited name can \
     move an image into a scope the policy accepts without a signature. Sign bundles at pull \
     (--sign-key) and check them with --key PUB";

/// What a finished pull adds: the policy every image passed, the key that signed.
pub fn pull(options: &PullOptions) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(policy) = &options.signature_policy {
        lines.push(format!(
            "every image in the bundle passed {} (sha256 {}); the signatures checked travel with them",
            policy.file.display(),
            &policy.sha256[..12]
        ));
    }
    if let Some(key) = &options.sign_key {
        lines.push(format!(
            "bundle.json signed: {} (key {})",
            options.dir.join(BUNDLE_SIGNATURE_FILE).display(),
            key.public().fingerprint()
        ));
    }
    lines
}

/// What `verify` adds: whether the bundle's signature was checked (or is there unchecked),
/// the policy the pull used, and the verdict of the one given (`file`, `sha256`).
pub fn verify(
    dir: &Path,
    report: &VerifyReport,
    key_given: bool,
    policy: Option<(&Path, &str)>,
) -> Vec<String> {
    let mut lines = Vec::new();
    if key_given {
        lines.push("bundle.json.sig: signed by the key given".to_string());
    } else if dir.join(BUNDLE_SIGNATURE_FILE).exists() {
        lines.push(
            "bundle.json.sig is present but not checked: give the pull host's key with --key PUB"
                .to_string(),
        );
    }
    if let Some(record) = &report.pulled_under {
        lines.push(format!(
            "pulled under the signature policy {} (sha256 {}), which accepted {} image(s)",
            record.file, record.sha256, record.images
        ));
    }
    let Some((file, sha256)) = policy else {
        return lines;
    };
    if report.problems.is_empty() {
        lines.push(format!(
            "{} image(s) accepted by {}",
            report.signed_images,
            file.display()
        ));
    }
    if !key_given {
        lines.push(format!("warning: {UNSIGNED_NAMES}"));
    }
    if let Some(record) = report.pulled_under.as_ref().filter(|r| r.sha256 != sha256) {
        lines.push(format!(
            "note: {} is not the policy the pull used ({}, sha256 {}); the verdict above is \
             this policy's",
            file.display(),
            record.file,
            record.sha256.get(..12).unwrap_or(&record.sha256)
        ));
    }
    lines
}
