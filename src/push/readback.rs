//! The read-back phase: every tag written whose PUT the registry answered without naming the
//! digest it stored is asked for again, and must have the digest the push wrote. (A registry
//! that names it has read it back already: a different one fails the PUT.)

use futures_util::{StreamExt, TryStreamExt};

use super::error::PushError;
use super::inventory::Inventory;
use super::plan::Plan;
use crate::registry::RegistryClient;

/// Asks for the tags `unconfirmed` (indexes into `plan.tags`); refuses, naming each, when any
/// differs or is missing.
pub(super) async fn check(
    client: &RegistryClient,
    inventory: &Inventory,
    plan: &Plan<'_>,
    unconfirmed: &[usize],
    concurrency: usize,
) -> Result<(), PushError> {
    let mismatches: Vec<String> = futures_util::stream::iter(unconfirmed.iter().map(|&i| {
        let (r, tag) = plan.tags[i];
        let repository = &inventory.repos[r].repository;
        let expected = &plan.entries[i].digest;
        async move {
            let found = client.head_manifest(repository, &tag.name).await?;
            Ok::<_, PushError>(match found {
                Some(d) if d.digest == *expected => None,
                Some(d) => Some(format!(
                    "{repository}:{} is {}, the push wrote {expected}",
                    tag.name, d.digest
                )),
                None => Some(format!("{repository}:{} is missing", tag.name)),
            })
        }
    }))
    .buffer_unordered(concurrency)
    .try_filter_map(|x| async move { Ok(x) })
    .try_collect()
    .await?;
    if mismatches.is_empty() {
        Ok(())
    } else {
        Err(PushError::ReadBack { mismatches })
    }
}
