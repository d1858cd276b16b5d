//! `ferry push`: check the bundle (every file there with its size) before the target hears a
//! word, index its archives, ask the target which tags it already has, upload every missing blob
//! straight out of the archive files (HEAD first, a mount when another repository of this push
//! has it, PATCHes when a body is refused), then manifests children first, tags last with
//! channel and catalog tags after all others, read every written tag back, and write a receipt.
//! Nothing is written to disk but the receipt.

mod inventory;
mod schema;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;

pub use inventory::{BlobItem, Inventory, Phase, RepoItem, TagItem};

use crate::bundle::{BaseRecord, Bundle, BundleError};
use crate::digest::Digest;
use crate::manifest::Manifest;
use crate::registry::{Placed, RegistryClient, RegistryError, Transfer, UploadMode};
use crate::report::{Outcome, ProgressFn, Reporter, human_bytes, list_some};
use crate::settings::PushSettings;

/// What can go wrong in a push.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The bundle cannot be read or is incomplete.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The target refused something.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A repository could not be written (it may not exist and the registry will not create it).
    #[error("{repository}: {source}")]
    Repository {
        /// The repository.
        repository: String,
        /// What the registry said.
        #[source]
        source: Box<RegistryError>,
    },
    /// The registry refused to move a tag.
    #[error(
        "{repository}:{tag} exists with another digest and the registry refused to move it: {source}"
    )]
    Immutable {
        /// The repository.
        repository: String,
        /// The tag.
        tag: String,
        /// What the registry said.
        #[source]
        source: Box<RegistryError>,
    },
    /// Some blobs could not be sent; the tags that need them were not written.
    #[error("{} blob(s) could not be pushed ({first}); {} tag(s) were not written: {}", failed, skipped.len(), list_some(skipped))]
    Incomplete {
        /// The first failure.
        first: Box<PushError>,
        /// How many blobs failed.
        failed: usize,
        /// The tags left out, as `repository:tag`.
        skipped: Vec<String>,
    },
    /// Tags at the target do not point where the bundle says after the push.
    #[error("read back: {}", mismatches.join("; "))]
    ReadBack {
        /// One line per tag.
        mismatches: Vec<String>,
    },
    /// A differential bundle was pushed where its base was not.
    #[error(
        "this bundle is differential: it leaves out what {base} holds (pulled from {origin}), \
         and the target lacks {} of those blobs: {}; nothing was sent",
        missing.len(),
        list_some(missing)
    )]
    BaseMissing {
        /// The base bundle, described.
        base: String,
        /// Where the base came from.
        origin: String,
        /// The blobs missing, with the repository needing each.
        missing: Vec<String>,
    },
    /// A left-out blob is at the target but the registry would not mount it where needed.
    #[error(
        "{repository}: the target has blob {digest} in {from}, but would not link it here, and \
         this differential bundle does not hold it"
    )]
    NotMounted {
        /// The repository needing it.
        repository: String,
        /// The blob.
        digest: Digest,
        /// Where the target has it.
        from: String,
    },
    /// The receipt could not be written.
    #[error("cannot write the receipt {}: {source}", path.display())]
    Receipt {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl PushError {
    /// A one-line fix, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            PushError::Bundle(e) => e.hint(),
            PushError::Registry(e) => e.hint(),
            PushError::Repository { repository, source } => match source.as_ref() {
                RegistryError::NotFound { .. } | RegistryError::Denied { .. } => {
                    let project = repository.split('/').next().unwrap_or(repository);
                    Some(format!(
                        "the registry would not create {repository}: on Harbor, Nexus or GitLab \
                         create the project '{project}' first and give this account push rights"
                    ))
                }
                other => other.hint(),
            },
            PushError::Immutable { .. } => Some(
                "the registry keeps tags immutable: remove the old tag there, or push with \
                 --no-overwrite to leave it (it is then reported as drifted)"
                    .into(),
            ),
            PushError::Incomplete { first, .. } => first.hint().or_else(|| {
                Some("run the same command again: what is at the target is not sent twice".into())
            }),
            PushError::ReadBack { .. } => Some(
                "something else writes to these repositories at the same time; push again".into(),
            ),
            PushError::BaseMissing { .. } => Some(
                "push the base bundle to this target first (or any later full bundle), or pull \
                 a full bundle without --since-bundle"
                    .into(),
            ),
            PushError::NotMounted { .. } => Some(
                "allow cross-repository blob mounts on the registry, or push a full bundle \
                 (pulled without --since-bundle)"
                    .into(),
            ),
            PushError::Receipt { .. } => None,
        }
    }
}

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

/// Pushes the bundle in `settings.dir` to `settings.target`.
pub async fn push(
    settings: &PushSettings,
    reporter: Arc<dyn Reporter>,
) -> Result<PushSummary, PushError> {
    let started = Instant::now();
    // Offline first: a broken bundle is refused before the target hears anything.
    let inventory = {
        let dir = settings.dir.clone();
        let target = settings.target.path.clone();
        let modules = settings.modules_path.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let bundle = Bundle::open(&dir)?;
            let problems = bundle.inconsistencies()?;
            if !problems.is_empty() {
                return Err(BundleError::Inconsistent { problems });
            }
            Inventory::read(&bundle, &target, modules.as_deref(), &handle)
        })
        .await
        .expect("reading the bundle does not panic")?
    };
    let client = RegistryClient::new(
        &settings.target.registry,
        &settings.target.path,
        settings.client.clone(),
    )?;
    client.ping().await?;
    let mode = settings
        .upload_chunk_size
        .filter(|&size| size > 0)
        .map_or(UploadMode::Monolithic, UploadMode::Chunked);
    let progress: ProgressFn = {
        let reporter = reporter.clone();
        Arc::new(move |n| reporter.bytes(n))
    };
    let transfer = Transfer::new(client, mode, progress).asking_only(settings.dry_run);
    let client = transfer.client();
    let base = inventory.base.clone();
    let located = match &base {
        Some(base) => {
            reporter.begin(
                &format!(
                    "checking that {} has the {} blobs this differential bundle left out",
                    settings.target,
                    base.left_out.len()
                ),
                0,
                0,
            );
            let located = locate_left_out(client, &inventory, base, settings.concurrency).await?;
            reporter.finish(&format!(
                "the target has all {} left-out blobs",
                located.len()
            ));
            located
        }
        None => HashMap::new(),
    };

    // What the target has: a tag already at the bundle's digest needs nothing more.
    let tag_list: Vec<(usize, &TagItem)> = inventory.tags().collect();
    reporter.begin(
        &format!(
            "asking {} which of {} tags it has",
            settings.target,
            tag_list.len()
        ),
        0,
        0,
    );
    let current: Vec<Option<Digest>> = futures_util::stream::iter(tag_list.iter().map(|(r, t)| {
        let repository = &inventory.repos[*r].repository;
        async move {
            let found = client.head_manifest(repository, &t.name).await;
            match found {
                Ok(found) => Ok(found.map(|d| d.digest)),
                Err(RegistryError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        }
    }))
    .buffered(settings.concurrency)
    .try_collect()
    .await?;
    let mut entries: Vec<ReceiptEntry> = Vec::new();
    let mut to_write: Vec<usize> = Vec::new();
    // Referrers indexes the target lists differently: what to write instead of the bundle's.
    let mut merged: HashMap<usize, Manifest> = HashMap::new();
    for (i, ((r, tag), now)) in tag_list.iter().zip(&current).enumerate() {
        let repo = &inventory.repos[*r];
        let (status, previous, digest, write) =
            decide(client, settings.no_overwrite, repo, tag, now.as_ref()).await?;
        if let Some(manifest) = write {
            merged.insert(i, manifest);
        }
        if matches!(
            status,
            TagStatus::Pushed | TagStatus::Updated | TagStatus::Merged
        ) {
            to_write.push(i);
        }
        entries.push(ReceiptEntry {
            repository: repo.repository.clone(),
            tag: tag.name.clone(),
            digest,
            status,
            previous,
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

    // What those tags need, per repository.
    let mut wanted_blobs: Vec<HashSet<&Digest>> = vec![HashSet::new(); inventory.repos.len()];
    let mut wanted_manifests: Vec<HashSet<&Digest>> = vec![HashSet::new(); inventory.repos.len()];
    for &i in &to_write {
        let (r, tag) = tag_list[i];
        wanted_manifests[r].extend(tag.manifests.iter());
        for manifest in &tag.manifests {
            wanted_blobs[r].extend(inventory.needs[manifest].iter());
        }
    }
    let blobs: Vec<(&BlobItem, Vec<usize>)> = inventory
        .blobs
        .iter()
        .filter_map(|b| {
            let repos: Vec<usize> = b
                .repos
                .iter()
                .copied()
                .filter(|r| wanted_blobs[*r].contains(&b.digest))
                .collect();
            (!repos.is_empty()).then_some((b, repos))
        })
        .collect();

    let mut summary = PushSummary::default();
    let bytes: u64 = blobs
        .iter()
        .filter(|(b, _)| b.source.is_some())
        .map(|(b, _)| b.size)
        .sum();
    reporter.begin(
        &format!("pushing to {}", settings.target),
        blobs.len() as u64,
        bytes,
    );
    let located_ref = &located;
    let results: Vec<(&BlobItem, Result<BlobCounts, PushError>)> =
        futures_util::stream::iter(blobs.iter().map(|(blob, repos)| {
            let transfer = &transfer;
            let inventory = &inventory;
            async move {
                let found_at = located_ref.get(&blob.digest).map(String::as_str);
                let result = push_blob(transfer, inventory, blob, repos, found_at).await;
                (*blob, result)
            }
        }))
        .buffer_unordered(settings.concurrency)
        .collect()
        .await;
    let mut failed: HashSet<Digest> = HashSet::new();
    let mut first_failure = None;
    for (blob, result) in results {
        match result {
            Ok(counts) => {
                summary.uploaded += counts.uploaded;
                summary.uploaded_bytes += counts.uploaded as u64 * blob.size;
                summary.present += counts.present;
                summary.mounted += counts.mounted;
                let outcome = if counts.uploaded > 0 {
                    Outcome::Transferred
                } else if counts.mounted > 0 {
                    Outcome::Mounted
                } else {
                    Outcome::Skipped
                };
                reporter.item(&blob.digest.short(), blob.size, outcome);
            }
            Err(error) => {
                failed.insert(blob.digest.clone());
                first_failure.get_or_insert(error);
            }
        }
    }
    summary.patch_size = transfer.patch_size();
    summary.body_refused = transfer.body_refused();
    reporter.finish(&format!("blobs: {}", summary.blob_counts(settings.dry_run)));

    // A tag whose graph lacks a blob is not written, nor anything only it needs.
    let complete = |digest: &Digest| inventory.needs[digest].iter().all(|b| !failed.contains(b));
    for &i in &to_write {
        if !complete(&tag_list[i].1.digest) {
            entries[i].status = TagStatus::Skipped;
        }
    }

    if !settings.dry_run {
        // Manifests, children first, per repository; repositories in parallel.
        summary.manifests =
            futures_util::stream::iter(inventory.repos.iter().enumerate().map(|(r, repo)| {
                let transfer = &transfer;
                let wanted = &wanted_manifests[r];
                let complete = &complete;
                async move {
                    let manifests = repo
                        .manifests
                        .iter()
                        .filter(|m| wanted.contains(&m.digest) && complete(&m.digest));
                    transfer
                        .write_manifests(&repo.repository, manifests)
                        .await
                        .map_err(|source| PushError::Repository {
                            repository: repo.repository.clone(),
                            source: Box::new(source),
                        })
                }
            }))
            .buffer_unordered(settings.concurrency)
            .try_fold(0, |sum, n| async move { Ok(sum + n) })
            .await?;

        // Tags: versions first, then channels and the module catalog, then referrers.
        for phase in [Phase::Versions, Phase::Aliases, Phase::Referrers] {
            let batch: Vec<usize> = to_write
                .iter()
                .copied()
                .filter(|&i| {
                    tag_list[i].1.phase == phase && entries[i].status != TagStatus::Skipped
                })
                .collect();
            futures_util::stream::iter(batch.into_iter().map(|i| {
                let (r, tag) = tag_list[i];
                let repository = &inventory.repos[r].repository;
                let manifest = merged
                    .get(&i)
                    .unwrap_or_else(|| inventory.repos[r].manifest(&tag.digest));
                let moving = entries[i].status == TagStatus::Updated;
                async move {
                    client
                        .put_manifest(repository, &tag.name, manifest)
                        .await
                        .map_err(|source| match source {
                            RegistryError::Status { .. } | RegistryError::Denied { .. }
                                if moving =>
                            {
                                PushError::Immutable {
                                    repository: repository.clone(),
                                    tag: tag.name.clone(),
                                    source: Box::new(source),
                                }
                            }
                            other => PushError::Repository {
                                repository: repository.clone(),
                                source: Box::new(other),
                            },
                        })
                }
            }))
            .buffer_unordered(settings.concurrency)
            .try_collect::<Vec<()>>()
            .await?;
        }

        // Read back every tag written.
        let written: Vec<usize> = to_write
            .iter()
            .copied()
            .filter(|&i| entries[i].status != TagStatus::Skipped)
            .collect();
        let mismatches: Vec<String> = futures_util::stream::iter(written.into_iter().map(|i| {
            let (r, tag) = tag_list[i];
            let repository = &inventory.repos[r].repository;
            let client = &client;
            let expected = &entries[i].digest;
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
        .buffer_unordered(settings.concurrency)
        .try_filter_map(|x| async move { Ok(x) })
        .try_collect()
        .await?;
        if !mismatches.is_empty() {
            return Err(PushError::ReadBack { mismatches });
        }
    }

    entries.sort_by(|a, b| (&a.repository, &a.tag).cmp(&(&b.repository, &b.tag)));
    summary.tags = entries;
    summary.seconds = started.elapsed().as_secs_f64();
    if let Some(path) = &settings.receipt
        && !settings.dry_run
    {
        write_receipt(path, &summary.tags)?;
    }
    if let Some(first) = first_failure {
        let skipped = summary
            .tags
            .iter()
            .filter(|t| t.status == TagStatus::Skipped)
            .map(|t| format!("{}:{}", t.repository, t.tag))
            .collect();
        return Err(PushError::Incomplete {
            first: Box::new(first),
            failed: failed.len(),
            skipped,
        });
    }
    Ok(summary)
}

/// What to do with one tag, given what the target has under it (`now`): its status, the
/// digest it had, the digest it will have, and for a merged referrers index the manifest to
/// write instead of the bundle's.
async fn decide(
    client: &RegistryClient,
    no_overwrite: bool,
    repo: &RepoItem,
    tag: &TagItem,
    now: Option<&Digest>,
) -> Result<(TagStatus, Option<Digest>, Digest, Option<Manifest>), PushError> {
    let digest = tag.digest.clone();
    let previous = match now {
        None => return Ok((TagStatus::Pushed, None, digest, None)),
        Some(d) if *d == tag.digest => return Ok((TagStatus::Present, None, digest, None)),
        Some(d) => d.clone(),
    };
    let ordinary = if no_overwrite {
        TagStatus::Drifted
    } else {
        TagStatus::Updated
    };
    if tag.schema_of.is_none() {
        return Ok((ordinary, Some(previous), digest, None));
    }
    // A referrers index: adding the bundle's entries to the target's loses nothing, so it is
    // merged even with --no-overwrite.
    let theirs = client.get_manifest(&repo.repository, &tag.name).await?;
    if !theirs.is_index() {
        return Ok((ordinary, Some(previous), digest, None));
    }
    let both = schema::merge(repo.manifest(&tag.digest), &theirs).map_err(|e| {
        PushError::Registry(RegistryError::Protocol {
            target: client.target(Some(&repo.repository)),
            detail: format!("{}: {e}", tag.name),
        })
    })?;
    Ok(match both {
        // The bundle's index lists everything the target's does.
        None => (TagStatus::Updated, Some(previous), digest, None),
        // Merged by an earlier push already.
        Some(both) if both.digest == theirs.digest => (TagStatus::Present, None, both.digest, None),
        Some(both) => (
            TagStatus::Merged,
            Some(previous),
            both.digest.clone(),
            Some(both),
        ),
    })
}

/// What happened to one blob across the repositories that need it.
#[derive(Debug, Default)]
struct BlobCounts {
    uploaded: usize,
    present: usize,
    mounted: usize,
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
) -> Result<BlobCounts, PushError> {
    let mut counts = BlobCounts::default();
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
                .map_err(|e| {
                    e.unify(|source| PushError::Repository {
                        repository: repository.to_string(),
                        source: Box::new(source),
                    })
                })?
        };
        match placed {
            Placed::Present => counts.present += 1,
            Placed::Mounted => counts.mounted += 1,
            Placed::Uploaded => counts.uploaded += 1,
        }
        // Later repositories mount from the last one found holding the blob or sent it.
        if placed != Placed::Mounted {
            there = Some(repository);
        }
    }
    Ok(counts)
}

/// Where the target has each blob a differential bundle left out: a repository that needs it,
/// else any repository of this push (to mount from). Refuses, naming the base, when the target
/// lacks any, before anything is sent.
async fn locate_left_out(
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
    let found: Vec<(&BlobItem, Option<String>)> =
        futures_util::stream::iter(expected.into_iter().map(|blob| async move {
            let others = (0..inventory.repos.len()).filter(|r| !blob.repos.contains(r));
            for r in blob.repos.iter().copied().chain(others) {
                let repository = &inventory.repos[r].repository;
                match client.blob_exists(repository, &blob.digest).await {
                    Ok(true) => return Ok((blob, Some(repository.clone()))),
                    Ok(false) | Err(RegistryError::NotFound { .. }) => {}
                    Err(e) => {
                        return Err(PushError::Repository {
                            repository: repository.clone(),
                            source: Box::new(e),
                        });
                    }
                }
            }
            Ok((blob, None))
        }))
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

fn write_receipt(path: &std::path::Path, tags: &[ReceiptEntry]) -> Result<(), PushError> {
    let mut json = serde_json::to_vec_pretty(tags).expect("a receipt serialises");
    json.push(b'\n');
    crate::store::write_atomic_blocking(path, &json).map_err(|e| PushError::Receipt {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })
}
