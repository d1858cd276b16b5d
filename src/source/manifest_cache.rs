//! Every manifest a resolution reads, each fetched once: by digest across repositories (bytes
//! are bytes, whichever repository sent them), a tag asked once (what it points at, or that it
//! is missing), and a digest being fetched waited for rather than fetched twice when images
//! planned side by side share it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;

use crate::digest::Digest;
use crate::manifest::Manifest;
use crate::registry::{RegistryClient, RegistryError};

/// (repository, tag).
type TagKey = (String, String);

/// The manifests read so far.
#[derive(Debug, Default)]
pub(crate) struct ManifestCache {
    /// What each tag asked for pointed at; `None` when the source said it does not exist.
    tags: Mutex<HashMap<TagKey, Option<Digest>>>,
    /// The manifests by digest; a cell being filled is awaited by whoever else wants it.
    digests: Mutex<HashMap<Digest, Arc<OnceCell<Manifest>>>>,
}

impl ManifestCache {
    /// A cache holding `known` manifests under their (repository, tag or digest).
    pub fn with(known: HashMap<TagKey, Manifest>) -> Self {
        let cache = ManifestCache::default();
        for ((repo, reference), manifest) in known {
            cache.insert(&repo, &reference, manifest);
        }
        cache
    }

    /// Holds `manifest` as what `reference` of `repo` points at (a tag or its digest).
    pub fn insert(&self, repo: &str, reference: &str, manifest: Manifest) {
        if reference.parse::<Digest>().is_err() {
            lock(&self.tags).insert(
                (repo.to_string(), reference.to_string()),
                Some(manifest.digest.clone()),
            );
        }
        let digest = manifest.digest.clone();
        lock(&self.digests)
            .entry(digest)
            .or_insert_with(|| Arc::new(OnceCell::new_with(Some(manifest))));
    }

    /// The manifest at `repo:reference` (a tag or a digest); `None` when the source lacks it.
    pub async fn find(
        &self,
        client: &RegistryClient,
        repo: &str,
        reference: &str,
    ) -> Result<Option<Manifest>, RegistryError> {
        match self.get(client, repo, reference).await {
            Ok(manifest) => Ok(Some(manifest)),
            Err(RegistryError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The manifest at `repo:reference` (a tag or a digest).
    pub async fn get(
        &self,
        client: &RegistryClient,
        repo: &str,
        reference: &str,
    ) -> Result<Manifest, RegistryError> {
        if let Ok(digest) = reference.parse::<Digest>() {
            return self.by_digest(client, repo, &digest).await;
        }
        let key = (repo.to_string(), reference.to_string());
        let known = lock(&self.tags).get(&key).cloned();
        match known {
            Some(Some(digest)) => self.by_digest(client, repo, &digest).await,
            Some(None) => Err(RegistryError::NotFound {
                target: client.target(Some(repo)),
                what: format!("manifest {reference}"),
                detail: "the source said so earlier in this run".into(),
            }),
            None => match client.get_manifest(repo, reference).await {
                // The one request a tag needs: its answer is the manifest, whether or not its
                // digest was already held.
                Ok(manifest) => {
                    self.insert(repo, reference, manifest.clone());
                    Ok(manifest)
                }
                Err(e @ RegistryError::NotFound { .. }) => {
                    lock(&self.tags).insert(key, None);
                    Err(e)
                }
                Err(e) => Err(e),
            },
        }
    }

    /// The manifest `digest`, read from `repo` unless it is already held or being read.
    pub async fn by_digest(
        &self,
        client: &RegistryClient,
        repo: &str,
        digest: &Digest,
    ) -> Result<Manifest, RegistryError> {
        let cell = lock(&self.digests)
            .entry(digest.clone())
            .or_default()
            .clone();
        let reference = digest.to_string();
        cell.get_or_try_init(|| client.get_manifest(repo, &reference))
            .await
            .cloned()
    }

    /// The manifests held, by digest, those `needed` says are wanted; the cache is used up.
    pub fn into_needed(self, needed: impl Fn(&Digest) -> bool) -> BTreeMap<Digest, Manifest> {
        self.digests
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .into_iter()
            .filter(|(digest, _)| needed(digest))
            .filter_map(|(digest, cell)| {
                let manifest = match Arc::try_unwrap(cell) {
                    Ok(cell) => cell.into_inner(),
                    Err(shared) => shared.get().cloned(),
                };
                Some((digest, manifest?))
            })
            .collect()
    }
}

/// A lock that a panic elsewhere does not poison for good: the maps stay consistent between
/// statements.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
