//! `--platform`: which entries of a multi-platform index a pull keeps. An index losing entries
//! is written anew (same fields, the entries kept in their order, keys sorted, no whitespace),
//! so the same source index and the same platforms always give the same bytes and digest.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::digest::Digest;
use crate::graph::MAX_DEPTH;
use crate::manifest::{Descriptor, Manifest, ManifestError, is_index_type};

/// Docker's buildx marks attestation entries of an index with these annotations; such an entry
/// belongs to the image manifest it names and stays exactly when that one stays.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";

/// One `OS/ARCH[/VARIANT]` a pull keeps, e.g. `linux/amd64` or `linux/arm/v7`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct PlatformSpec {
    /// `linux`, `windows`, …
    pub os: String,
    /// `amd64`, `arm64`, …
    pub architecture: String,
    /// `v7`, `v8`, …; without one every variant of the architecture matches.
    pub variant: Option<String>,
}

impl FromStr for PlatformSpec {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, String> {
        let parts: Vec<&str> = input.split('/').collect();
        let valid = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| valid(p)) {
            return Err(format!(
                "'{input}' is not a platform: write OS/ARCH or OS/ARCH/VARIANT in lowercase, \
                 e.g. linux/amd64 or linux/arm/v7"
            ));
        }
        Ok(PlatformSpec {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }
}

impl TryFrom<String> for PlatformSpec {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        value.parse()
    }
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl PlatformSpec {
    /// True when an index entry's `platform` object is this platform.
    fn matches(&self, platform: &serde_json::Value) -> bool {
        let field = |name: &str| platform.get(name).and_then(|v| v.as_str());
        field("os") == Some(self.os.as_str())
            && field("architecture") == Some(self.architecture.as_str())
            && match &self.variant {
                None => true,
                Some(variant) => field("variant") == Some(variant.as_str()),
            }
    }
}

/// `linux/amd64, linux/arm64` for messages.
pub fn describe(platforms: &[PlatformSpec]) -> String {
    platforms
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What filtering did to one index.
#[derive(Debug, Clone)]
pub enum Kept {
    /// Every entry stays (or it is not an index): the source bytes are kept.
    Whole,
    /// Some entries went: the new index, and any nested index rewritten on the way (which
    /// the walk must find by digest instead of asking the source).
    Rewritten {
        /// The new root.
        index: Manifest,
        /// Nested indexes written anew.
        nested: Vec<Manifest>,
    },
    /// The index has platform entries and none of them is asked for.
    Nothing,
}

/// Keeps of `root` (and of any index nested in it) only the entries for `platforms`, the
/// entries without a platform (artifacts), and the attestations of kept entries. `fetch` reads
/// a nested index by its descriptor. A manifest that is not an index is kept whole: its
/// platform would only be known from its config.
pub async fn keep_platforms<E>(
    root: &Manifest,
    platforms: &[PlatformSpec],
    fetch: &impl AsyncFn(&Descriptor) -> Result<Manifest, E>,
) -> Result<Kept, E>
where
    E: From<ManifestError>,
{
    if platforms.is_empty() || !root.is_index() {
        return Ok(Kept::Whole);
    }
    let mut nested = Vec::new();
    let kept = filter_index(root, platforms, fetch, 1, &mut nested).await?;
    Ok(match kept {
        None => Kept::Nothing,
        Some(index) if index.digest == root.digest => Kept::Whole,
        Some(index) => Kept::Rewritten { index, nested },
    })
}

/// One index: `None` when it has platform entries and none is kept.
async fn filter_index<E>(
    index: &Manifest,
    platforms: &[PlatformSpec],
    fetch: &impl AsyncFn(&Descriptor) -> Result<Manifest, E>,
    depth: usize,
    nested: &mut Vec<Manifest>,
) -> Result<Option<Manifest>, E>
where
    E: From<ManifestError>,
{
    let invalid = |reason: String| ManifestError::Invalid {
        digest: index.digest.clone(),
        reason,
    };
    if depth > MAX_DEPTH {
        return Err(ManifestError::TooBig {
            digest: index.digest.clone(),
            reason: format!("indexes nest deeper than {MAX_DEPTH}"),
        }
        .into());
    }
    let mut document: serde_json::Value =
        serde_json::from_slice(&index.bytes).map_err(|e| invalid(e.to_string()))?;
    let entries: Vec<serde_json::Value> = match document.get("manifests") {
        Some(serde_json::Value::Array(entries)) => entries.clone(),
        _ => return Err(invalid("an index without a manifests list".into()).into()),
    };
    // Per entry: Some(new entry) to keep it, None to drop it; attestations decided after.
    let mut decided: Vec<Option<serde_json::Value>> = Vec::with_capacity(entries.len());
    let mut attestations = Vec::new();
    let mut platform_entries = 0;
    let mut matched = 0;
    for (i, entry) in entries.iter().enumerate() {
        let descriptor: Descriptor = serde_json::from_value(entry.clone())
            .map_err(|e| invalid(format!("entry {i}: {e}")))?;
        if is_index_type(&descriptor.media_type) {
            let child = fetch(&descriptor).await?;
            match Box::pin(filter_index(&child, platforms, fetch, depth + 1, nested)).await? {
                None => {
                    platform_entries += 1;
                    decided.push(None);
                }
                Some(kept) => {
                    let mut entry = entry.clone();
                    if kept.digest != child.digest {
                        entry["digest"] = kept.digest.to_string().into();
                        entry["size"] = (kept.bytes.len() as u64).into();
                        nested.push(kept);
                    }
                    platform_entries += 1;
                    matched += 1;
                    decided.push(Some(entry));
                }
            }
            continue;
        }
        if descriptor
            .annotations
            .get(REFERENCE_TYPE)
            .map(String::as_str)
            == Some("attestation-manifest")
        {
            attestations.push(i);
            decided.push(None);
            continue;
        }
        match entry.get("platform") {
            Some(platform) => {
                platform_entries += 1;
                if platforms.iter().any(|p| p.matches(platform)) {
                    matched += 1;
                    decided.push(Some(entry.clone()));
                } else {
                    decided.push(None);
                }
            }
            None => decided.push(Some(entry.clone())),
        }
    }
    if platform_entries > 0 && matched == 0 {
        return Ok(None);
    }
    let kept_digests: HashSet<String> = decided
        .iter()
        .flatten()
        .filter_map(|e| e.get("digest").and_then(|d| d.as_str()).map(String::from))
        .collect();
    for i in attestations {
        let of = entries[i]
            .get("annotations")
            .and_then(|a| a.get(REFERENCE_DIGEST))
            .and_then(|d| d.as_str());
        if of.is_some_and(|d| kept_digests.contains(d)) {
            decided[i] = Some(entries[i].clone());
        }
    }
    let kept: Vec<serde_json::Value> = decided.into_iter().flatten().collect();
    if kept == entries {
        return Ok(Some(index.clone()));
    }
    document["manifests"] = serde_json::Value::Array(kept);
    let bytes = serde_json::to_vec(&document).expect("JSON values serialise");
    Manifest::from_bytes(bytes, Some(&index.media_type))
        .map(Some)
        .map_err(E::from)
}

/// True when an image is asked for by digest (`repo@sha256:…`, `reference` is the digest): it
/// is kept whole, since whatever names it does so by that digest.
pub fn pinned(reference: &str) -> bool {
    reference.parse::<Digest>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    fn entry(n: u8, platform: Option<&str>) -> serde_json::Value {
        let mut entry = serde_json::json!({
            "mediaType": crate::manifest::OCI_MANIFEST,
            "digest": digest(n),
            "size": 100 + n as u64,
        });
        if let Some(p) = platform {
            let spec: PlatformSpec = p.parse().unwrap();
            let mut platform =
                serde_json::json!({"os": spec.os, "architecture": spec.architecture});
            if let Some(v) = spec.variant {
                platform["variant"] = v.into();
            }
            entry["platform"] = platform;
        }
        entry
    }

    fn index(entries: Vec<serde_json::Value>) -> Manifest {
        let bytes = serde_json::to_vec_pretty(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": crate::manifest::OCI_INDEX,
            "manifests": entries,
            "annotations": {"org.example": "kept"},
        }))
        .unwrap();
        Manifest::from_bytes(bytes, None).unwrap()
    }

    async fn keep(root: &Manifest, platforms: &[&str]) -> Kept {
        let platforms: Vec<PlatformSpec> = platforms.iter().map(|p| p.parse().unwrap()).collect();
        let no_fetch = async |d: &Descriptor| -> Result<Manifest, ManifestError> {
            panic!("no nested index here ({})", d.digest)
        };
        keep_platforms(root, &platforms, &no_fetch).await.unwrap()
    }

    fn entries_of(manifest: &Manifest) -> Vec<String> {
        manifest
            .references()
            .unwrap()
            .manifests
            .iter()
            .map(|d| d.digest.to_string())
            .collect()
    }

    #[test]
    fn platforms_parse_and_print() {
        let p: PlatformSpec = "linux/arm/v7".parse().unwrap();
        assert_eq!(p.variant.as_deref(), Some("v7"));
        assert_eq!(p.to_string(), "linux/arm/v7");
        for bad in [
            "linux",
            "linux/",
            "Linux/amd64",
            "linux/amd64/v8/x",
            "linux amd64",
        ] {
            let err = bad.parse::<PlatformSpec>().unwrap_err();
            assert!(err.contains("OS/ARCH"), "{bad}: {err}");
        }
    }

    #[tokio::test]
    async fn only_the_asked_platforms_stay_and_the_result_is_deterministic() {
        let root = index(vec![
            entry(1, Some("linux/amd64")),
            entry(2, Some("linux/arm64/v8")),
            entry(3, Some("linux/arm/v7")),
        ]);
        let Kept::Rewritten { index: kept, .. } = keep(&root, &["linux/arm64"]).await else {
            panic!("the index loses entries");
        };
        assert_eq!(entries_of(&kept), vec![digest(2)]);
        assert_eq!(kept.media_type, crate::manifest::OCI_INDEX);
        let text = String::from_utf8(kept.bytes.to_vec()).unwrap();
        assert!(text.contains(r#""org.example":"kept""#), "{text}");
        let Kept::Rewritten { index: again, .. } = keep(&root, &["linux/arm64"]).await else {
            panic!()
        };
        assert_eq!(again.bytes, kept.bytes);
        // A variant narrows; several platforms keep the source order.
        let Kept::Rewritten { index: two, .. } =
            keep(&root, &["linux/arm/v7", "linux/amd64"]).await
        else {
            panic!()
        };
        assert_eq!(entries_of(&two), vec![digest(1), digest(3)]);
        assert!(matches!(
            keep(&root, &["linux/arm/v6"]).await,
            Kept::Nothing
        ));
    }

    #[tokio::test]
    async fn an_index_keeping_everything_keeps_its_bytes() {
        let root = index(vec![entry(1, Some("linux/amd64")), entry(4, None)]);
        assert!(matches!(keep(&root, &["linux/amd64"]).await, Kept::Whole));
        let artifacts = index(vec![entry(4, None)]);
        assert!(matches!(
            keep(&artifacts, &["linux/s390x"]).await,
            Kept::Whole
        ));
    }

    #[tokio::test]
    async fn attestations_follow_the_image_they_describe() {
        let attestation = |n: u8, of: u8| {
            let mut e = entry(n, None);
            e["platform"] = serde_json::json!({"os": "unknown", "architecture": "unknown"});
            e["annotations"] = serde_json::json!({
                REFERENCE_TYPE: "attestation-manifest",
                REFERENCE_DIGEST: digest(of),
            });
            e
        };
        let root = index(vec![
            entry(1, Some("linux/amd64")),
            entry(2, Some("linux/arm64")),
            attestation(11, 1),
            attestation(12, 2),
        ]);
        let Kept::Rewritten { index: kept, .. } = keep(&root, &["linux/amd64"]).await else {
            panic!()
        };
        assert_eq!(entries_of(&kept), vec![digest(1), digest(11)]);
    }

    #[tokio::test]
    async fn nested_indexes_are_filtered_and_handed_back() {
        let inner = index(vec![
            entry(1, Some("linux/amd64")),
            entry(2, Some("linux/arm64")),
        ]);
        let mut inner_entry = entry(9, None);
        inner_entry["mediaType"] = crate::manifest::OCI_INDEX.into();
        inner_entry["digest"] = inner.digest.to_string().into();
        inner_entry["size"] = (inner.bytes.len() as u64).into();
        let root = index(vec![inner_entry, entry(3, Some("linux/arm64"))]);
        let platforms = vec!["linux/amd64".parse().unwrap()];
        let fetch = async |d: &Descriptor| -> Result<Manifest, ManifestError> {
            assert_eq!(d.digest, inner.digest);
            Ok(inner.clone())
        };
        let Kept::Rewritten {
            index: kept,
            nested,
        } = keep_platforms(&root, &platforms, &fetch).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(nested.len(), 1);
        assert_eq!(entries_of(&nested[0]), vec![digest(1)]);
        assert_eq!(entries_of(&kept), vec![nested[0].digest.to_string()]);
    }
}
