//! The blobs phase: every blob the tags to write need, in parallel, through the transfer
//! engine: there already, mounted from another repository of this push, or uploaded straight
//! out of the archive files. A blob that fails is recorded, not fatal: the tags needing it are
//! skipped and the others still go.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;

use super::error::PushError;
use super::inventory::{BlobItem, Inventory};
use super::options::PushOptions;
use super::receipt::PushSummary;
use crate::digest::Digest;
use crate::registry::{Placed, Transfer};
use crate::report::{Outcome, Reporter};

/// The blobs that could not be sent.
#[derive(Debug, Default)]
pub(super) struct Failures {
    /// Each of them.
    pub blobs: HashSet<Digest>,
    /// Why the first could not.
    pub first: Option<PushError>,
}

impl Failures {
    /// True when any blob of `needs` (what a manifest needs) could not be sent.
    pub fn any_of(&self, needs: &HashSet<Digest>) -> bool {
        needs.iter().any(|b| self.blobs.contains(b))
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
struct Copies {
    uploaded: usize,
    present: usize,
    mounted: usize,
}

/// Sends `blobs`, each to the repositories (indexes) listed with it, counting in `summary`
/// what was uploaded, present or mounted. `located` says where the target has the blobs a
/// differential bundle left out.
pub(super) async fn send(
    transfer: &Transfer,
    inventory: &Inventory,
    blobs: &[(&BlobItem, Vec<usize>)],
    located: &HashMap<Digest, String>,
    options: &PushOptions,
    reporter: &dyn Reporter,
    summary: &mut PushSummary,
) -> Failures {
    let bytes: u64 = blobs
        .iter()
        .filter(|(b, _)| b.source.is_some())
        .map(|(b, _)| b.size)
        .sum();
    reporter.begin(
        &format!("pushing to {}", options.target),
        blobs.len() as u64,
        bytes,
    );
    let results: Vec<(&BlobItem, Result<Copies, PushError>)> =
        futures_util::stream::iter(blobs.iter().map(|(blob, repos)| async move {
            let found_at = located.get(&blob.digest).map(String::as_str);
            let result = push_blob(transfer, inventory, blob, repos, found_at).await;
            (*blob, result)
        }))
        .buffer_unordered(options.concurrency)
        .collect()
        .await;
    let mut failures = Failures::default();
    for (blob, result) in results {
        match result {
            Ok(copies) => {
                summary.uploaded += copies.uploaded;
                summary.uploaded_bytes += copies.uploaded as u64 * blob.size;
                summary.present += copies.present;
                summary.mounted += copies.mounted;
                let outcome = if copies.uploaded > 0 {
                    Outcome::Transferred
                } else if copies.mounted > 0 {
                    Outcome::Mounted
                } else {
                    Outcome::Skipped
                };
                reporter.item(&blob.digest.short(), blob.size, outcome);
            }
            Err(error) => {
                failures.blobs.insert(blob.digest.clone());
                failures.first.get_or_insert(error);
            }
        }
    }
    summary.patch_size = transfer.patch_size();
    summary.body_refused = transfer.body_refused();
    reporter.finish(&format!("blobs: {}", summary.blob_counts(options.dry_run)));
    failures
}

/// Sends one blob to every repository in `repos` that lacks it: the first copy is uploaded,
/// the others mounted from it. A blob the bundle left out is mounted from `found_at`, the
/// repository of the target that has it.
async fn push_blob(
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
