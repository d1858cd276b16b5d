//! The manifests phase: per repository (repositories in parallel) the manifests the tags to
//! write need, children before parents, each only when the repository lacks it; none whose
//! graph lacks a blob that could not be sent.

use futures_util::{StreamExt, TryStreamExt};

use super::blobs::Failures;
use super::error::PushError;
use super::inventory::Inventory;
use super::plan::Plan;
use crate::registry::Transfer;

/// Writes the manifests `plan` needs; returns how many were written.
pub(super) async fn write(
    transfer: &Transfer,
    inventory: &Inventory,
    plan: &Plan<'_>,
    failures: &Failures,
    concurrency: usize,
) -> Result<usize, PushError> {
    futures_util::stream::iter(inventory.repos.iter().enumerate().map(|(r, repo)| {
        let wanted = &plan.needs.manifests[r];
        async move {
            let manifests = repo.manifests.iter().filter(|m| {
                wanted.contains(&m.digest) && !failures.any_of(&inventory.needs[&m.digest])
            });
            transfer
                .write_manifests(&repo.repository, manifests)
                .await
                .map_err(|source| PushError::in_repository(&repo.repository, source))
        }
    }))
    .buffer_unordered(concurrency)
    .try_fold(0, |sum, n| async move { Ok(sum + n) })
    .await
}
