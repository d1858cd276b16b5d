//! One blob to every repository of the push that needs it, through the transfer engine: there
//! already, mounted from another repository of this push, or uploaded straight out of the
//! archive files; and the record of blobs that could not be sent.

use std::collections::HashSet;

use super::error::PushError;
use super::inventory::{BlobItem, Inventory};
use super::receipt::PushSummary;
use crate::digest::Digest;
use crate::registry::{Placed, Transfer};
use crate::report::Outcome;

/// The blobs that could not be sent.
#[derive(Debug, Default)]
pub(super) struct Failures {
    /// Each of them.
    pub blobs: HashSet<Digest>,
    /// Why the first could not.
    pub first: Option<PushError>,
}

impl Failures {
    /// True when any of `blobs` (what a manifest needs) could not be sent.
    pub fn any_of<'a>(&self, mut blobs: impl Iterator<Item = &'a BlobItem>) -> bool {
        blobs.any(|b| self.blobs.contains(&b.digest))
    }

    /// The push's result: `summary`, or when a blob failed, the first failure with the tags
    /// left out for it.
    pub fn into_result(self, summary: PushSummary) -> Result<PushSummary, PushError> {
        match self.first {
            None => Ok(summary),
            Some(first) => Err(PushError::Incomplete {
                first: Box::new(first),
                failed: self.blobs.len(),
                skipped: summary.skipped(),
            }),
        }
    }
}

/// What happened to one blob across the repositories that need it.
#[derive(Debug, Default)]
pub(super) struct Copies {
    uploaded: usize,
    present: usize,
    mounted: usize,
}

impl Copies {
    /// Adds these copies of a blob of `size` bytes to `summary`; what happened to it, for the
    /// reporter.
    pub fn count(&self, size: u64, summary: &mut PushSummary) -> Outcome {
        summary.uploaded += self.uploaded;
        summary.uploaded_bytes += self.uploaded as u64 * size;
        summary.present += self.present;
        summary.mounted += self.mounted;
        if self.uploaded > 0 {
            Outcome::Transferred
        } else if self.mounted > 0 {
            Outcome::Mounted
        } else {
            Outcome::Skipped
        }
    }
}

/// Sends one blob to every repository in `repos` that lacks it: the first copy is uploaded,
/// the others mounted from it. A blob the bundle left out is mounted from `found_at`, the
/// repository of the target that has it.
pub(super) async fn push_blob(
    transfer: &Transfer,
    inventory: &Inventory,
    blob: &BlobItem,
    repos: &[usize],
    found_at: Option<&str>,
) -> Result<Copies, PushError> {
    let mut copies = Copies::default();
    let mut there: Option<&str> = found_at;
    for &r in repos {
        let repository = inventory.repos[r].repository.as_str();
        // Where a left-out blob was just found needs no second HEAD.
        let placed = if found_at == Some(repository) {
            Placed::Present
        } else {
            let from = there;
            transfer
                .place_blob(repository, &blob.digest, from, async || {
                    blob.source.clone().ok_or_else(|| PushError::NotMounted {
                        repository: repository.to_string(),
                        digest: blob.digest.clone(),
                        from: from.unwrap_or_default().to_string(),
                    })
                })
                .await
                .map_err(|e| e.unify(|source| PushError::in_repository(repository, source)))?
        };
        match placed {
            Placed::Present => copies.present += 1,
            Placed::Mounted => copies.mounted += 1,
            Placed::Uploaded => copies.uploaded += 1,
        }
        // Later repositories mount from the last one found holding the blob or sent it.
        if placed != Placed::Mounted {
            there = Some(repository);
        }
    }
    Ok(copies)
}
