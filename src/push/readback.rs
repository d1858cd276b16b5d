//! The read-back phase: every tag written asked for again at the target, which must answer
//! with the digest the push wrote.

use futures_util::{StreamExt, TryStreamExt};

use super::error::PushError;
use super::inventory::Inventory;
use super::plan::Plan;
use crate::registry::RegistryClient;

/// Asks for every tag `plan` wrote; refuses, naming each, when any differs or is missing.
pub(super) async fn check(
    client: &RegistryClient,
    inventory: &Inventory,
    plan: &Plan<'_>,
    concurrency: usize,
) -> Result<(), PushError> {
    let mismatches: Vec<String> = futures_util::stream::iter(plan.written().map(|i| {
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
