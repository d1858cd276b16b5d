//! A differential bundle's left-out blobs, found at the target before anything is sent: each in
//! a repository that needs it, else in any repository of this push to mount from. One missing
//! refuses the push, naming the base bundle to push first.

use std::collections::HashMap;

use futures_util::{StreamExt, TryStreamExt};

use super::error::PushError;
use super::inventory::{BlobItem, Inventory};
use super::options::PushOptions;
use crate::bundle::BaseRecord;
use crate::digest::Digest;
use crate::registry::{RegistryClient, RegistryError};
use crate::report::{Reporter, human_bytes};

/// Where the target has each blob the bundle left out (none for a full bundle), as the
/// repository holding it.
pub(super) async fn locate(
    client: &RegistryClient,
    inventory: &Inventory,
    options: &PushOptions,
    reporter: &dyn Reporter,
) -> Result<HashMap<Digest, String>, PushError> {
    let Some(base) = &inventory.base else {
        return Ok(HashMap::new());
    };
    reporter.begin(
        &format!(
            "checking that {} has the {} blobs this differential bundle left out",
            options.target,
            base.left_out.len()
        ),
        0,
        0,
    );
    let located = locate_all(client, inventory, base, options.concurrency).await?;
    reporter.finish(&format!(
        "the target has all {} left-out blobs",
        located.len()
    ));
    Ok(located)
}

async fn locate_all(
    client: &RegistryClient,
    inventory: &Inventory,
    base: &BaseRecord,
    concurrency: usize,
) -> Result<HashMap<Digest, String>, PushError> {
    let expected: Vec<&BlobItem> = inventory
        .blobs
        .iter()
        .filter(|b| b.source.is_none())
        .collect();
    let found: Vec<(&BlobItem, Option<String>)> = futures_util::stream::iter(expected)
        .map(|blob| async move { Ok::<_, PushError>((blob, find(client, inventory, blob).await?)) })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let mut located = HashMap::new();
    let mut missing = Vec::new();
    for (blob, at) in found {
        match at {
            Some(repository) => {
                located.insert(blob.digest.clone(), repository);
            }
            None => missing.push(format!(
                "{} ({}, for {})",
                blob.digest,
                human_bytes(blob.size),
                inventory.repos[blob.repos[0]].repository
            )),
        }
    }
    if !missing.is_empty() {
        missing.sort();
        return Err(PushError::BaseMissing {
            base: base.describe(),
            origin: base.source.clone(),
            missing,
        });
    }
    Ok(located)
}

/// The first repository holding `blob`: those needing it first, then the others of this push.
async fn find(
    client: &RegistryClient,
    inventory: &Inventory,
    blob: &BlobItem,
) -> Result<Option<String>, PushError> {
    let others = (0..inventory.repos.len()).filter(|r| !blob.repos.contains(r));
    for r in blob.repos.iter().copied().chain(others) {
        let repository = &inventory.repos[r].repository;
        match client.blob_exists(repository, &blob.digest).await {
            Ok(true) => return Ok(Some(repository.clone())),
            Ok(false) | Err(RegistryError::NotFound { .. }) => {}
            Err(e) => return Err(PushError::in_repository(repository, e)),
        }
    }
    Ok(None)
}
