//! What the target has, and so what the push writes: every tag asked for (HEAD), a tag already
//! at the bundle's digest left alone, one pointing elsewhere moved or (`--no-overwrite`) left
//! as drifted, a referrers index merged with the target's; then the manifests and blobs the
//! tags to write need, per repository.

use std::collections::{HashMap, HashSet};

use futures_util::{StreamExt, TryStreamExt};

use super::error::PushError;
use super::inventory::{BlobItem, Inventory, RepoItem, TagItem};
use super::options::PushOptions;
use super::receipt::{ReceiptEntry, TagStatus};
use super::schema;
use crate::digest::Digest;
use crate::manifest::Manifest;
use crate::registry::{RegistryClient, RegistryError};
use crate::report::Reporter;

/// What the push writes.
pub(super) struct Plan<'a> {
    /// Every tag of the bundle, as (repository index, tag).
    pub tags: Vec<(usize, &'a TagItem)>,
    /// For each of `tags`, at the same index, what happens to it.
    pub entries: Vec<ReceiptEntry>,
    /// The tags to write, as indexes into `tags`.
    pub to_write: Vec<usize>,
    /// Referrers indexes the target lists differently, by index into `tags`: what to write
    /// instead of the bundle's.
    pub merged: HashMap<usize, Manifest>,
    /// What the tags to write need.
    pub needs: Needs<'a>,
}

/// The manifests and blobs the tags to write need.
pub(super) struct Needs<'a> {
    /// Per repository (index), its manifests they need.
    pub manifests: Vec<HashSet<&'a Digest>>,
    /// The blobs they need, each with the repositories (indexes) needing it.
    pub blobs: Vec<(&'a BlobItem, Vec<usize>)>,
}

/// What to do with one tag.
struct Decision {
    status: TagStatus,
    /// Where the tag pointed at the target, when that changes.
    previous: Option<Digest>,
    /// Where it will point.
    digest: Digest,
    /// For a merged referrers index: the manifest written instead of the bundle's.
    merged: Option<Manifest>,
}

/// Asks the target for every tag of `inventory` and decides what to write.
pub(super) async fn plan<'a>(
    client: &RegistryClient,
    inventory: &'a Inventory,
    options: &PushOptions,
    reporter: &dyn Reporter,
) -> Result<Plan<'a>, PushError> {
    let tags: Vec<(usize, &TagItem)> = inventory.tags().collect();
    reporter.begin(
        &format!(
            "asking {} which of {} tags it has",
            options.target,
            tags.len()
        ),
        0,
        0,
    );
    let current: Vec<Option<Digest>> = futures_util::stream::iter(tags.iter().map(|(r, t)| {
        let repository = &inventory.repos[*r].repository;
        async move {
            match client.head_manifest(repository, &t.name).await {
                Ok(found) => Ok(found.map(|d| d.digest)),
                Err(RegistryError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        }
    }))
    .buffered(options.concurrency)
    .try_collect()
    .await?;
    let mut entries = Vec::new();
    let mut to_write = Vec::new();
    let mut merged = HashMap::new();
    for (i, ((r, tag), now)) in tags.iter().zip(&current).enumerate() {
        let repo = &inventory.repos[*r];
        let decision = decide(client, options.no_overwrite, repo, tag, now.as_ref()).await?;
        if let Some(manifest) = decision.merged {
            merged.insert(i, manifest);
        }
        if matches!(
            decision.status,
            TagStatus::Pushed | TagStatus::Updated | TagStatus::Merged
        ) {
            to_write.push(i);
        }
        entries.push(ReceiptEntry {
            repository: repo.repository.clone(),
            tag: tag.name.clone(),
            digest: decision.digest,
            status: decision.status,
            previous: decision.previous,
        });
    }
    reporter.finish(&format!(
        "{} of {} tags are already there",
        entries
            .iter()
            .filter(|e| e.status == TagStatus::Present)
            .count(),
        entries.len()
    ));
    let needs = needed(inventory, &tags, &to_write);
    Ok(Plan {
        tags,
        entries,
        to_write,
        merged,
        needs,
    })
}

impl Plan<'_> {
    /// Marks tag `i` (an index into `tags`) as skipped: it is not written.
    pub fn skip(&mut self, i: usize) {
        self.entries[i].status = TagStatus::Skipped;
    }

    /// What happened to every tag, sorted by repository and tag.
    pub fn into_entries(self) -> Vec<ReceiptEntry> {
        let mut entries = self.entries;
        entries.sort_by(|a, b| (&a.repository, &a.tag).cmp(&(&b.repository, &b.tag)));
        entries
    }

    /// The tags to write that were not skipped, as indexes into `tags`.
    pub fn written(&self) -> impl Iterator<Item = usize> {
        self.to_write
            .iter()
            .copied()
            .filter(|&i| self.entries[i].status != TagStatus::Skipped)
    }
}

/// What the tags `to_write` (indexes into `tags`) need.
fn needed<'a>(
    inventory: &'a Inventory,
    tags: &[(usize, &'a TagItem)],
    to_write: &[usize],
) -> Needs<'a> {
    // Blobs as indexes into the inventory's.
    let mut blobs: Vec<HashSet<usize>> = vec![HashSet::new(); inventory.repos.len()];
    let mut manifests: Vec<HashSet<&Digest>> = vec![HashSet::new(); inventory.repos.len()];
    for &i in to_write {
        let (r, tag) = tags[i];
        manifests[r].extend(tag.manifests.iter());
        for manifest in &tag.manifests {
            blobs[r].extend(inventory.needs.get(manifest).into_iter().flatten());
        }
    }
    let blobs = inventory
        .blobs
        .iter()
        .enumerate()
        .filter_map(|(k, b)| {
            let repos: Vec<usize> = b
                .repos
                .iter()
                .copied()
                .filter(|r| blobs[*r].contains(&k))
                .collect();
            (!repos.is_empty()).then_some((b, repos))
        })
        .collect();
    Needs { manifests, blobs }
}

/// What to do with one tag, given what the target has under it (`now`).
async fn decide(
    client: &RegistryClient,
    no_overwrite: bool,
    repo: &RepoItem,
    tag: &TagItem,
    now: Option<&Digest>,
) -> Result<Decision, PushError> {
    let digest = tag.digest.clone();
    let decision = |status, previous, digest, merged| Decision {
        status,
        previous,
        digest,
        merged,
    };
    let previous = match now {
        None => return Ok(decision(TagStatus::Pushed, None, digest, None)),
        Some(d) if *d == tag.digest => {
            return Ok(decision(TagStatus::Present, None, digest, None));
        }
        Some(d) => d.clone(),
    };
    let ordinary = if no_overwrite {
        TagStatus::Drifted
    } else {
        TagStatus::Updated
    };
    if tag.schema_of.is_none() {
        return Ok(decision(ordinary, Some(previous), digest, None));
    }
    // A referrers index: adding the bundle's entries to the target's loses nothing, so it is
    // merged even with --no-overwrite.
    let theirs = client.get_manifest(&repo.repository, &tag.name).await?;
    if !theirs.is_index() {
        return Ok(decision(ordinary, Some(previous), digest, None));
    }
    let both = schema::merge(repo.root_of(tag), &theirs).map_err(|e| {
        PushError::Registry(RegistryError::Protocol {
            target: client.target(Some(&repo.repository)),
            detail: format!("{}: {e}", tag.name),
        })
    })?;
    Ok(match both {
        // The bundle's index lists everything the target's does.
        None => decision(TagStatus::Updated, Some(previous), digest, None),
        // Merged by an earlier push already.
        Some(both) if both.digest == theirs.digest => {
            decision(TagStatus::Present, None, both.digest, None)
        }
        Some(both) => decision(
            TagStatus::Merged,
            Some(previous),
            both.digest.clone(),
            Some(both),
        ),
    })
}
