//! What a push did (or, with `--dry-run`, would do): every tag with its status, the blob and
//! manifest counts, and the receipt that lists the tags as JSON.

use std::path::Path;

use serde::Serialize;

use super::error::PushError;
use crate::digest::Digest;
use crate::report::human_bytes;

/// What happened to a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TagStatus {
    /// Written; it did not exist.
    Pushed,
    /// It was already there with this digest.
    Present,
    /// It pointed elsewhere and was moved.
    Updated,
    /// It points elsewhere and was left (`--no-overwrite`).
    Drifted,
    /// A referrers index (`sha256-<hex>`) the target had too: written with the target's own
    /// entries added to the bundle's.
    Merged,
    /// Not written: a blob it needs could not be pushed.
    Skipped,
}

/// One line of the receipt.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiptEntry {
    /// The repository at the target.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// The digest the tag has at the target after the push: the bundle's, but for a merged
    /// referrers index.
    pub digest: Digest,
    /// What happened.
    pub status: TagStatus,
    /// For updated and drifted tags: where the tag pointed at the target before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<Digest>,
}

/// What a push did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Default)]
pub struct PushSummary {
    /// Every tag and what happened to it.
    pub tags: Vec<ReceiptEntry>,
    /// Blobs uploaded (or to upload).
    pub uploaded: usize,
    /// Their bytes.
    pub uploaded_bytes: u64,
    /// Blob uploads skipped because the repository had them.
    pub present: usize,
    /// Blobs linked from another repository of the target.
    pub mounted: usize,
    /// Manifests written.
    pub manifests: usize,
    /// PATCH size used, when uploads were chunked.
    pub patch_size: Option<u64>,
    /// True when the registry (or a proxy) refused a body as too large.
    pub body_refused: bool,
    /// Seconds the push took.
    pub seconds: f64,
}

impl PushSummary {
    /// Tags with the given status.
    pub fn count(&self, status: &TagStatus) -> usize {
        self.tags.iter().filter(|t| &t.status == status).count()
    }

    /// The tags not written, as `repository:tag`.
    pub fn skipped(&self) -> Vec<String> {
        self.tags
            .iter()
            .filter(|t| t.status == TagStatus::Skipped)
            .map(|t| format!("{}:{}", t.repository, t.tag))
            .collect()
    }

    /// `3 uploaded (1.2 MB), 5 already there, 2 mounted` (`to upload` for a dry run).
    pub fn blob_counts(&self, dry_run: bool) -> String {
        format!(
            "{} {} ({}), {} already there, {} mounted",
            self.uploaded,
            if dry_run { "to upload" } else { "uploaded" },
            human_bytes(self.uploaded_bytes),
            self.present,
            self.mounted
        )
    }
}

/// Writes the receipt: every tag of the push as a JSON list, replaced at once.
pub(super) fn write(path: &Path, tags: &[ReceiptEntry]) -> Result<(), PushError> {
    let mut json = serde_json::to_vec_pretty(tags).expect("a receipt serialises");
    json.push(b'\n');
    crate::store::write_atomic_blocking(path, &json).map_err(|e| PushError::Receipt {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })
}
