//! `ferry copy`: one image, index or artifact, with every platform and every blob, byte for
//! byte, between registries and OCI layouts. Blobs move first, in parallel; manifests follow
//! children before parents, so the destination never holds a manifest whose parts are missing.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};

use crate::graph::{Graph, walk};
use crate::layout::{LayoutError, OciLayout};
use crate::manifest::{Descriptor, Manifest, ManifestError};
use crate::reference::{Reference, ReferenceError, validate_tag};
use crate::registry::{
    ClientOptions, Placed, ProgressFn, RegistryClient, RegistryError, Transfer, UploadMode,
};
use crate::report::{Outcome, Reporter, human_bytes};
use crate::segment::BlobSource;
use crate::store::{BlobStore, StoreError};

/// One end of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `host[:port]/repo[:tag][@digest]`.
    Registry(Reference),
    /// `oci:<dir>[:<tag>]`.
    Layout {
        /// The layout directory.
        dir: PathBuf,
        /// The tag inside it.
        tag: Option<String>,
    },
}

impl FromStr for Endpoint {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some(rest) = s.strip_prefix("oci:") else {
            return Reference::parse(s).map(Endpoint::Registry);
        };
        let fail = |reason: String| ReferenceError {
            input: s.to_string(),
            reason,
        };
        // The tag follows the last colon, unless that colon belongs to the path.
        let (dir, tag) = match rest.rsplit_once(':') {
            Some((dir, tag)) if !tag.contains('/') => (dir, Some(tag)),
            _ => (rest, None),
        };
        if dir.is_empty() {
            return Err(fail("expected oci:<dir>[:<tag>]".into()));
        }
        if let Some(tag) = tag {
            validate_tag(tag).map_err(fail)?;
        }
        Ok(Endpoint::Layout {
            dir: PathBuf::from(dir),
            tag: tag.map(str::to_string),
        })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Registry(r) => write!(f, "{r}"),
            Endpoint::Layout { dir, tag: Some(t) } => write!(f, "oci:{}:{t}", dir.display()),
            Endpoint::Layout { dir, tag: None } => write!(f, "oci:{}", dir.display()),
        }
    }
}

/// How to copy.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Connection settings for a registry source.
    pub source: ClientOptions,
    /// Connection settings for a registry destination.
    pub destination: ClientOptions,
    /// Blobs in flight at once.
    pub concurrency: usize,
    /// Where blobs wait between two registries (default: the system's temp directory).
    pub tmp_dir: Option<PathBuf>,
    /// How blob bodies are uploaded at first (PATCHes follow a body refused as too large).
    pub upload_mode: UploadMode,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            source: ClientOptions::default(),
            destination: ClientOptions::default(),
            concurrency: 8,
            tmp_dir: None,
            upload_mode: UploadMode::Monolithic,
        }
    }
}

/// What a copy did.
#[derive(Debug, Clone)]
pub struct CopySummary {
    /// The digest of the copied root manifest or index.
    pub digest: crate::digest::Digest,
    /// Its media type.
    pub media_type: String,
    /// Manifests written (the root included).
    pub manifests: usize,
    /// Blobs whose bytes were sent.
    pub transferred: usize,
    /// Blobs the destination already had.
    pub skipped: usize,
    /// Blobs linked by a cross-repository mount.
    pub mounted: usize,
    /// Bytes of the blobs sent.
    pub bytes: u64,
}

/// Why a copy failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A registry operation failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A layout could not be read or written.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// A manifest could not be used.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Local files failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request cannot be carried out as given.
    #[error("{0}")]
    Invalid(String),
}

/// The side an image is read from.
enum Source {
    Registry {
        client: Box<RegistryClient>,
        reference: Reference,
    },
    Layout(OciLayout),
}

impl Source {
    async fn manifest(&self, descriptor: &Descriptor) -> Result<Manifest, CopyError> {
        match self {
            Source::Registry { client, reference } => Ok(client
                .get_manifest(&reference.repository, &descriptor.digest.to_string())
                .await?),
            Source::Layout(layout) => Ok(layout.read_manifest(descriptor).await?),
        }
    }
}

/// The side an image is written to.
enum Destination {
    Registry {
        transfer: Box<Transfer>,
        repository: String,
    },
    Layout(OciLayout),
}

/// Copies the image `source` names to `destination`. The destination tag defaults to the
/// source's; a source named only by digest keeps no tag in a registry (it is stored by digest)
/// and is tagged with the digest's hex in a layout.
pub async fn copy(
    source: &Endpoint,
    destination: &Endpoint,
    options: &CopyOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<CopySummary, CopyError> {
    let progress: ProgressFn = {
        let reporter = reporter.clone();
        Arc::new(move |n| reporter.bytes(n))
    };
    let (src, root, source_tag) = open_source(source, &options.source).await?;
    let dst = open_destination(destination, options, &progress).await?;
    let dst_tag = match destination {
        Endpoint::Registry(r) => r.tag.clone().or(source_tag),
        Endpoint::Layout { tag, .. } => tag
            .clone()
            .or(source_tag)
            .or_else(|| Some(root.digest.hex().to_string())),
    };

    let graph = walk(root, async |d: &Descriptor| src.manifest(d).await).await?;
    let blob_bytes: u64 = graph
        .blobs
        .iter()
        .fold(0, |sum, b| sum.saturating_add(b.size));
    reporter.begin(
        "copying",
        (graph.blobs.len() + graph.manifests.len()) as u64,
        blob_bytes,
    );

    let staging = match (&src, &dst) {
        (Source::Registry { .. }, Destination::Registry { .. }) => {
            let base = options.tmp_dir.clone().unwrap_or_else(std::env::temp_dir);
            tokio::fs::create_dir_all(&base)
                .await
                .map_err(StoreError::io("cannot create", &base))?;
            Some(
                tempfile::Builder::new()
                    .prefix("ferry-copy-")
                    .tempdir_in(&base)
                    .map_err(StoreError::io("cannot create a directory in", &base))?,
            )
        }
        _ => None,
    };
    let staging_store = staging.as_ref().map(|d| BlobStore::new(d.path()));

    let outcomes: Vec<Outcome> = futures_util::stream::iter(graph.blobs.iter())
        .map(|blob| {
            let progress = progress.clone();
            let src = &src;
            let dst = &dst;
            let staging = staging_store.as_ref();
            let reporter = reporter.clone();
            async move {
                let outcome = copy_blob(src, dst, blob, staging, &progress).await?;
                reporter.item(&blob.digest.short(), blob.size, outcome);
                Ok::<_, CopyError>(outcome)
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .try_collect()
        .await?;

    write_manifests(&dst, &graph, dst_tag.as_deref()).await?;
    let root = graph.manifests.last().expect("a graph has its root");
    let count = |o: Outcome| outcomes.iter().filter(|x| **x == o).count();
    let summary = CopySummary {
        digest: root.digest.clone(),
        media_type: root.media_type.clone(),
        manifests: graph.manifests.len(),
        transferred: count(Outcome::Transferred),
        skipped: count(Outcome::Skipped),
        mounted: count(Outcome::Mounted),
        bytes: graph
            .blobs
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| **o == Outcome::Transferred)
            .fold(0, |sum, (b, _)| sum.saturating_add(b.size)),
    };
    reporter.finish(&format!(
        "copied {source} -> {destination} ({}): {} manifests, {} blobs sent ({}), {} present, {} mounted",
        summary.digest,
        summary.manifests,
        summary.transferred,
        human_bytes(summary.bytes),
        summary.skipped,
        summary.mounted
    ));
    Ok(summary)
}

async fn open_source(
    endpoint: &Endpoint,
    options: &ClientOptions,
) -> Result<(Source, Manifest, Option<String>), CopyError> {
    match endpoint {
        Endpoint::Registry(reference) => {
            let target = reference.target().ok_or_else(|| {
                CopyError::Invalid(format!(
                    "source {reference} names no tag or digest; add :<tag> or @sha256:<digest>"
                ))
            })?;
            let client = Box::new(RegistryClient::new(
                &reference.registry,
                &reference.repository,
                options.clone(),
            )?);
            let root = client.get_manifest(&reference.repository, &target).await?;
            let tag = reference.tag.clone().filter(|_| reference.digest.is_none());
            Ok((
                Source::Registry {
                    client,
                    reference: reference.clone(),
                },
                root,
                tag,
            ))
        }
        Endpoint::Layout { dir, tag } => {
            let tag = tag.clone().ok_or_else(|| {
                CopyError::Invalid(format!(
                    "source oci:{} names no tag; use oci:<dir>:<tag>",
                    dir.display()
                ))
            })?;
            let layout = OciLayout::open(dir).await?;
            let descriptor = layout.resolve(&tag).await?;
            let root = layout.read_manifest(&descriptor).await?;
            Ok((Source::Layout(layout), root, Some(tag)))
        }
    }
}

async fn open_destination(
    endpoint: &Endpoint,
    options: &CopyOptions,
    progress: &ProgressFn,
) -> Result<Destination, CopyError> {
    match endpoint {
        Endpoint::Registry(reference) => {
            if reference.digest.is_some() {
                return Err(CopyError::Invalid(format!(
                    "destination {reference} names a digest; a destination takes a tag (or none)"
                )));
            }
            let client = RegistryClient::new(
                &reference.registry,
                &reference.repository,
                options.destination.clone(),
            )?;
            Ok(Destination::Registry {
                transfer: Box::new(Transfer::new(client, options.upload_mode, progress.clone())),
                repository: reference.repository.clone(),
            })
        }
        Endpoint::Layout { dir, .. } => Ok(Destination::Layout(OciLayout::create(dir).await?)),
    }
}

async fn copy_blob(
    src: &Source,
    dst: &Destination,
    blob: &Descriptor,
    staging: Option<&BlobStore>,
    progress: &ProgressFn,
) -> Result<Outcome, CopyError> {
    match dst {
        Destination::Layout(layout) => {
            let store = layout.store();
            if store.contains_verified(&blob.digest, blob.size).await {
                return Ok(Outcome::Skipped);
            }
            fetch_into(src, store, blob, progress).await?;
            Ok(Outcome::Transferred)
        }
        Destination::Registry {
            transfer,
            repository,
        } => {
            // Another repository of the same registry holds what it serves.
            let mount_from = match src {
                Source::Registry {
                    client: from,
                    reference,
                } if from.registry() == transfer.client().registry()
                    && &reference.repository != repository =>
                {
                    Some(reference.repository.as_str())
                }
                _ => None,
            };
            let placed = transfer
                .place_blob(repository, &blob.digest, mount_from, async || {
                    let path = match src {
                        Source::Layout(layout) => layout.store().path(&blob.digest),
                        Source::Registry { .. } => {
                            let store = staging.expect("registry-to-registry copies stage blobs");
                            fetch_into(src, store, blob, progress).await?;
                            store.path(&blob.digest)
                        }
                    };
                    Ok(BlobSource::file(path, blob.size))
                })
                .await;
            if let Some(store) = staging {
                // Staged blobs are only a relay: free the disk as soon as each one is sent.
                let _ = tokio::fs::remove_file(store.path(&blob.digest)).await;
            }
            Ok(match placed.map_err(|e| e.unify(CopyError::Registry))? {
                Placed::Present => Outcome::Skipped,
                Placed::Mounted => Outcome::Mounted,
                Placed::Uploaded => Outcome::Transferred,
            })
        }
    }
}

/// Brings a blob from the source into a local store, verified.
async fn fetch_into(
    src: &Source,
    store: &BlobStore,
    blob: &Descriptor,
    progress: &ProgressFn,
) -> Result<(), CopyError> {
    let mut writer = store.writer(&blob.digest, blob.size).await?;
    match src {
        Source::Registry { client, reference } => {
            let repository = &reference.repository;
            let resumed = writer.offset() > 0;
            client
                .download_blob(repository, blob, &mut writer, progress)
                .await?;
            match writer.commit().await {
                // The part kept from an earlier attempt may be what is wrong (the mismatched
                // partial file is gone now): one more try from the first byte.
                Err(StoreError::DigestMismatch { .. }) if resumed => {
                    tracing::warn!(
                        "{}: the partial copy was damaged; fetching it again",
                        blob.digest
                    );
                    let mut writer = store.writer(&blob.digest, blob.size).await?;
                    client
                        .download_blob(repository, blob, &mut writer, progress)
                        .await?;
                    writer
                        .commit()
                        .await
                        .map_err(|e| client.blob_error(repository, e))?;
                }
                other => {
                    other.map_err(|e| client.blob_error(repository, e))?;
                }
            }
        }
        Source::Layout(layout) => {
            let path = layout.store().path(&blob.digest);
            writer.copy_file(&path, |n| progress(n)).await?;
        }
    }
    Ok(())
}

async fn write_manifests(
    dst: &Destination,
    graph: &Graph,
    tag: Option<&str>,
) -> Result<(), CopyError> {
    let (root, children) = graph.manifests.split_last().expect("a graph has its root");
    match dst {
        Destination::Registry {
            transfer,
            repository,
        } => {
            transfer.write_manifests(repository, children).await?;
            let reference = tag.map_or_else(|| root.digest.to_string(), str::to_string);
            transfer
                .client()
                .put_manifest(repository, &reference, root)
                .await?;
        }
        Destination::Layout(layout) => {
            for manifest in &graph.manifests {
                layout.store().put_bytes(&manifest.bytes).await?;
            }
            let tag = tag.expect("layout destinations always get a tag");
            layout.tag(tag, &root.descriptor()).await?;
            layout.store().tidy().await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_both_forms() {
        assert_eq!(
            "oci:/tmp/x:v1".parse::<Endpoint>().unwrap(),
            Endpoint::Layout {
                dir: "/tmp/x".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            "oci:rel/dir".parse::<Endpoint>().unwrap(),
            Endpoint::Layout {
                dir: "rel/dir".into(),
                tag: None
            }
        );
        assert!(matches!(
            "127.0.0.1:5000/a/b:c".parse::<Endpoint>().unwrap(),
            Endpoint::Registry(_)
        ));
        assert!("oci::v1".parse::<Endpoint>().is_err());
        assert!("oci:/x:bad tag".parse::<Endpoint>().is_err());
    }
}
