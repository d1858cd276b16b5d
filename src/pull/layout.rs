//! From a resolved plan to archive plans: per archive one OCI layout per repository path, with
//! its `oci-layout`, an `index.json` naming every tag, the manifests as the source sent them,
//! and the blobs, which are fetched later (but those a differential bundle leaves out).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use super::index_json::{TagEntry, index_json};
use crate::bundle::{ArchivePlan, BundleError, EntryContent, EntryPath};
use crate::digest::Digest;
use crate::layout::LAYOUT_MARKER;
use crate::manifest::INDEX_LIMIT;
use crate::reference::join;
use crate::report::human_bytes;
use crate::source::Plan;

/// The archives of `plan`, each cut into chunks of `chunk_size` bytes (0 = none).
pub fn archive_plans(plan: &Plan, chunk_size: u64) -> Result<Vec<ArchivePlan>, BundleError> {
    plan.archives()
        .into_iter()
        .map(|archive| {
            let mut entries = Vec::new();
            for (path, images) in plan.layouts(archive) {
                entries.push((
                    join(path, "oci-layout").into(),
                    EntryContent::Bytes(Bytes::from_static(LAYOUT_MARKER)),
                ));
                let mut tags = Vec::with_capacity(images.len());
                let mut parts: BTreeMap<&Digest, u64> = BTreeMap::new();
                for image in &images {
                    let manifest = &plan.manifests[&image.digest];
                    tags.push(TagEntry {
                        tag: &image.tag,
                        media_type: &manifest.media_type,
                        digest: &manifest.digest,
                        size: manifest.bytes.len() as u64,
                    });
                    parts.extend(image.parts.iter());
                }
                let index = index_json(&mut tags);
                // Readers take an index.json up to a limit: a bigger one would make a bundle its
                // own verify refuses.
                if index.len() as u64 > INDEX_LIMIT {
                    return Err(BundleError::BadLayout {
                        archive: archive.to_string(),
                        layout: path.to_string(),
                        reason: format!(
                            "{} tags make an index.json of {}, over the {} a bundle reader \
                             takes; take fewer tags of this repository",
                            images.len(),
                            human_bytes(index.len() as u64),
                            human_bytes(INDEX_LIMIT)
                        ),
                    });
                }
                entries.push((
                    join(path, "index.json").into(),
                    EntryContent::Bytes(index.into()),
                ));
                let layout: Arc<str> = path.into();
                for (digest, size) in parts {
                    if plan.left_out.contains_key(digest) {
                        continue;
                    }
                    let content = match (plan.manifests.get(digest), plan.held.get(digest)) {
                        (Some(manifest), _) => EntryContent::Bytes(manifest.bytes.clone()),
                        (None, Some(held)) => EntryContent::Bytes(held.clone()),
                        (None, None) => EntryContent::Blob {
                            digest: digest.clone(),
                            size,
                        },
                    };
                    entries.push((EntryPath::blob(layout.clone(), digest.clone()), content));
                }
            }
            ArchivePlan::new(archive, entries, chunk_size)
        })
        .collect()
}
