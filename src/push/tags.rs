//! Tags: versions and everything else as soon as their graphs are written (see
//! [`super::writes`]), then release channels and the module catalog, then referrer tags, so
//! that no tag ever points at an image not complete at the target. A registry refusing to move a tag is named as keeping tags immutable. The
//! registry's answer to a tag's PUT names the digest it stored: that is the tag's read-back.

use futures_util::{StreamExt, TryStreamExt};

use super::error::PushError;
use super::inventory::{Inventory, Phase};
use super::plan::Plan;
use super::receipt::TagStatus;
use crate::registry::{RegistryClient, RegistryError};

/// Writes every tag of `phases` that `plan` writes and did not skip, phase after phase;
/// returns those whose PUT the registry answered without naming the digest it stored (indexes
/// into `plan.tags`), which must be read back.
pub(super) async fn write(
    client: &RegistryClient,
    inventory: &Inventory,
    plan: &Plan<'_>,
    phases: &[Phase],
    concurrency: usize,
) -> Result<Vec<usize>, PushError> {
    let mut unconfirmed = Vec::new();
    for &phase in phases {
        let batch = plan.written().filter(|&i| plan.tags[i].1.phase == phase);
        let confirmed: Vec<(usize, bool)> =
            futures_util::stream::iter(batch.map(|i| async move {
                write_tag(client, inventory, plan, i).await.map(|c| (i, c))
            }))
            .buffer_unordered(concurrency)
            .try_collect()
            .await?;
        unconfirmed.extend(confirmed.into_iter().filter(|(_, c)| !c).map(|(i, _)| i));
    }
    Ok(unconfirmed)
}

/// Writes tag `i` of `plan`; `true` when the registry's answer confirmed the digest.
pub(super) async fn write_tag(
    client: &RegistryClient,
    inventory: &Inventory,
    plan: &Plan<'_>,
    i: usize,
) -> Result<bool, PushError> {
    let (r, tag) = plan.tags[i];
    let repository = &inventory.repos[r].repository;
    let manifest = plan
        .merged
        .get(&i)
        .unwrap_or_else(|| inventory.repos[r].root_of(tag));
    let moving = plan.entries[i].status == TagStatus::Updated;
    client
        .put_manifest(repository, &tag.name, manifest)
        .await
        .map_err(|source| match source {
            RegistryError::Status { .. } | RegistryError::Denied { .. } if moving => {
                PushError::Immutable {
                    repository: repository.clone(),
                    tag: tag.name.clone(),
                    source: Box::new(source),
                }
            }
            other => PushError::in_repository(repository, other),
        })
}
