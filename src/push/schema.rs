//! The referrers tag schema at the target: a `sha256-<hex>` index lists every manifest that
//! refers to that digest, whoever pushed it. Writing the bundle's index over one the target
//! already has would lose the target's own entries, so the two are merged.

use crate::manifest::{Manifest, ManifestError};

/// The index to write when the target's `theirs` differs from the bundle's `ours`: `None` when
/// `ours` already lists everything `theirs` does; else `ours` with the entries only `theirs`
/// has appended in their order (the document written compactly with sorted keys, so the same
/// two indexes always merge to the same bytes).
pub fn merge(ours: &Manifest, theirs: &Manifest) -> Result<Option<Manifest>, ManifestError> {
    let mine = ours.references()?.manifests;
    let extra: Vec<_> = theirs
        .references()?
        .manifests
        .into_iter()
        .filter(|t| !mine.iter().any(|m| m.digest == t.digest))
        .collect();
    if extra.is_empty() {
        return Ok(None);
    }
    let invalid = |e: serde_json::Error| ManifestError::Invalid {
        digest: ours.digest.clone(),
        reason: e.to_string(),
    };
    let mut document: serde_json::Value = serde_json::from_slice(&ours.bytes).map_err(invalid)?;
    let mut entries = match document.get("manifests") {
        Some(serde_json::Value::Array(entries)) => entries.clone(),
        _ => Vec::new(),
    };
    for entry in extra {
        entries.push(serde_json::to_value(entry).map_err(invalid)?);
    }
    document["manifests"] = serde_json::Value::Array(entries);
    let bytes = serde_json::to_vec(&document).map_err(invalid)?;
    Manifest::from_bytes(bytes, Some(&ours.media_type)).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::OCI_INDEX;

    fn index(entries: &[u8]) -> Manifest {
        let manifests: Vec<serde_json::Value> = entries
            .iter()
            .map(|n| {
                serde_json::json!({
                    "mediaType": crate::manifest::OCI_MANIFEST,
                    "digest": format!("sha256:{}", format!("{n:02x}").repeat(32)),
                    "size": 10,
                    "artifactType": format!("application/x-{n}"),
                })
            })
            .collect();
        let bytes = serde_json::to_vec_pretty(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests,
        }))
        .unwrap();
        Manifest::from_bytes(bytes, None).unwrap()
    }

    #[test]
    fn what_only_the_target_lists_is_kept() {
        let ours = index(&[1, 2]);
        assert!(merge(&ours, &index(&[2])).unwrap().is_none());
        assert!(merge(&ours, &index(&[2, 1])).unwrap().is_none());
        let merged = merge(&ours, &index(&[3, 1])).unwrap().unwrap();
        let listed: Vec<String> = merged
            .references()
            .unwrap()
            .manifests
            .iter()
            .map(|d| d.digest.hex()[..2].to_string())
            .collect();
        assert_eq!(listed, ["01", "02", "03"]);
        assert!(
            String::from_utf8(merged.bytes.to_vec())
                .unwrap()
                .contains("application/x-3")
        );
        assert_eq!(
            merge(&ours, &index(&[3, 1])).unwrap().unwrap().bytes,
            merged.bytes
        );
    }
}
