//! The manifests phase: per repository (repositories in parallel) the manifests the tags to
//! write need, children before parents; none whose graph lacks a blob that could not be sent.
//! The root of a version tag that nothing else in the repository refers to is left to the
//! tags phase, whose PUT by tag writes it: one request instead of two.

use std::collections::HashSet;

use futures_util::{StreamExt, TryStreamExt};

use super::blobs::Failures;
use super::error::PushError;
use super::inventory::{Inventory, Phase};
use super::plan::Plan;
use crate::digest::Digest;
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
        let by_tag = written_by_tag(inventory, plan, r);
        async move {
            let manifests = repo.manifests.iter().filter(|m| {
                wanted.contains(&m.digest)
                    && !by_tag.contains(&m.digest)
                    && !failures.any_of(&inventory.needs[&m.digest])
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

/// The roots of repository `r`'s version tags that the tags phase writes by tag: those no
/// other manifest the push writes there names as a child or a subject (what names them must
/// find them there first). Channel and referrer tags come later, so their roots are written
/// here by digest.
fn written_by_tag<'a>(inventory: &'a Inventory, plan: &Plan<'a>, r: usize) -> HashSet<&'a Digest> {
    let repo = &inventory.repos[r];
    let wanted = &plan.needs.manifests[r];
    let mut named: HashSet<Digest> = HashSet::new();
    for manifest in repo.manifests.iter().filter(|m| wanted.contains(&m.digest)) {
        // Checked when the bundle was read; one that cannot be read names nothing.
        if let Ok(refs) = manifest.references() {
            named.extend(refs.manifests.into_iter().map(|d| d.digest));
            named.extend(refs.subject.map(|d| d.digest));
        }
    }
    plan.written()
        .map(|i| plan.tags[i])
        .filter(|(tag_repo, tag)| *tag_repo == r && tag.phase == Phase::Versions)
        .map(|(_, tag)| &tag.digest)
        .filter(|digest| !named.contains(*digest))
        .collect()
}
