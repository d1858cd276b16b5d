//! Referrer tags: the tag-schema name of a manifest's referrers index (`sha256-<hex>`) and
//! cosign's `sha256-<hex>.sig`, `.att` and `.sbom`, each naming the manifest it refers to.

use crate::digest::Digest;

/// Cosign's tag suffixes: signatures, attestations, SBOMs.
pub const COSIGN_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];

/// The referrers tag of a manifest: `sha256-<hex>`.
pub fn schema_tag(digest: &Digest) -> String {
    format!("{}-{}", digest.algorithm(), digest.hex())
}

/// The subject a referrers tag names: `sha256-<hex>` and cosign's `sha256-<hex>.sig` (and
/// `.att`, `.sbom`) give the digest.
pub fn subject_of(tag: &str) -> Option<Digest> {
    let (algorithm, rest) = tag.split_once('-')?;
    let hex = rest.split_once('.').map_or(rest, |(hex, suffix)| {
        if COSIGN_SUFFIXES.contains(&suffix) {
            hex
        } else {
            ""
        }
    });
    format!("{algorithm}:{hex}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrer_tags_name_their_subject() {
        let digest: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let tag = schema_tag(&digest);
        assert_eq!(tag, format!("sha256-{}", "ab".repeat(32)));
        assert_eq!(subject_of(&tag), Some(digest.clone()));
        assert_eq!(subject_of(&format!("{tag}.sig")), Some(digest.clone()));
        assert_eq!(subject_of(&format!("{tag}.sbom")), Some(digest));
        assert_eq!(subject_of(&format!("{tag}.other")), None);
        assert_eq!(subject_of("v1.2.3"), None);
        assert_eq!(subject_of("sha256-abc"), None);
    }
}
