//! Wanted tags made into a plan: each image's manifests fetched once, its indexes filtered to
//! the platforms its want asks for, and every manifest and blob it needs sized. The layout
//! resolver, image sets and the referrers search all plan through here.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures_util::{StreamExt, TryStreamExt};

use super::manifest_cache::ManifestCache;
use super::parts::Parts;
use super::plan::{Plan, PlannedImage};
use super::platforms::{Kept, PlatformSpec, keep_platforms};
use super::{SourceError, Take};
use crate::digest::Digest;
use crate::graph::walk;
use crate::manifest::{Descriptor, Manifest};
use crate::registry::RegistryClient;

/// One tag the plan needs, before its manifest is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Want {
    /// The archive it goes to.
    pub archive: String,
    /// Its path in the bundle.
    pub path: String,
    /// Its tag in the bundle.
    pub tag: String,
    /// The repository to read it from.
    pub repo: String,
    /// The tag or digest there.
    pub reference: String,
    /// What to take beyond the tag's graph.
    pub take: Take,
}

/// One image as the source has it, after the platform filter.
struct Sized {
    /// Its manifests' digests, children before parents, the root last.
    manifests: Vec<Digest>,
    /// The root's media type.
    media_type: String,
    /// Manifests the platform filter wrote anew (not at the source).
    rewritten: Vec<Manifest>,
    /// Every manifest and blob it needs, with sizes.
    parts: Parts,
    /// The source's digest when the filter rewrote the root.
    source_digest: Option<Digest>,
    /// The filter would change it, but it is pinned by digest and kept whole.
    kept_whole: bool,
    /// It has platforms, none of them asked for.
    no_platform: bool,
}

/// The wants' images, each fetched and walked once (per platform selection), every manifest
/// read through `known` (which holds what the caller read already) and so fetched once.
pub(crate) async fn plan_images(
    client: &RegistryClient,
    wants: Vec<Want>,
    known: ManifestCache,
    mut warnings: Vec<String>,
    concurrency: usize,
) -> Result<Plan, SourceError> {
    // An image pulled by digest keeps every platform: whatever names it does so by that digest.
    let key_of = |w: &Want| {
        let platforms = if super::platforms::pinned(&w.reference) {
            Vec::new()
        } else {
            w.take.platforms.clone()
        };
        (w.repo.clone(), w.reference.clone(), platforms)
    };
    let mut unique: Vec<(String, String, Vec<PlatformSpec>)> = wants.iter().map(key_of).collect();
    unique.sort();
    unique.dedup();
    let cache = &known;
    let sized: HashMap<(String, String, Vec<PlatformSpec>), Sized> =
        futures_util::stream::iter(unique.into_iter().map(|key| {
            let pinned_to = wants
                .iter()
                .find(|w| w.repo == key.0 && w.reference == key.1)
                .map(|w| w.take.platforms.clone())
                .unwrap_or_default();
            async move {
                let sized = size_image(client, cache, &key, &pinned_to).await?;
                Ok::<_, SourceError>((key, sized))
            }
        }))
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;

    let source_of = |w: &Want| {
        let separator = if super::platforms::pinned(&w.reference) {
            "@"
        } else {
            ":"
        };
        format!("{}/{}{separator}{}", client.registry(), w.repo, w.reference)
    };
    let no_platform: Vec<String> = wants
        .iter()
        .filter(|w| sized[&key_of(w)].no_platform)
        .map(&source_of)
        .collect();
    if !no_platform.is_empty() {
        let platforms = wants
            .iter()
            .find(|w| sized[&key_of(w)].no_platform)
            .map(|w| super::platforms::describe(&w.take.platforms))
            .unwrap_or_default();
        return Err(SourceError::Usage(format!(
            "{} image(s) have none of the platforms asked for ({platforms}): {}; add a \
             --platform they have, or leave --platform out",
            no_platform.len(),
            crate::report::list_some(&no_platform)
        )));
    }
    let needed: HashSet<&Digest> = sized.values().flat_map(|i| &i.manifests).collect();
    let mut manifests = known.into_needed(|d| needed.contains(d));
    for image in sized.values() {
        for manifest in &image.rewritten {
            manifests
                .entry(manifest.digest.clone())
                .or_insert_with(|| manifest.clone());
        }
    }
    let mut filtered = Vec::new();
    let mut whole = Vec::new();
    let mut images: Vec<PlannedImage> = wants
        .into_iter()
        .map(|want| {
            let image = &sized[&key_of(&want)];
            let digest = image.manifests.last().expect("a graph has its root");
            let source = source_of(&want);
            if image.kept_whole {
                whole.push(source.clone());
            }
            if let Some(from) = &image.source_digest {
                filtered.push(format!("{} ({from} -> {digest})", source));
            }
            PlannedImage {
                source,
                mirror: None,
                registry: client.registry().to_string(),
                archive: want.archive,
                path: want.path,
                tag: want.tag,
                repository: want.repo,
                digest: digest.clone(),
                media_type: image.media_type.clone(),
                parts: image.parts.clone(),
                source_digest: image.source_digest.clone(),
            }
        })
        .collect();
    if !filtered.is_empty() {
        warnings.push(format!(
            "--platform rewrote {} index(es), which now have new digests: {}; a reference by \
             the source digest (repo@sha256:...) will not resolve at the target: refer to \
             them by tag or by the new digest (`ferry ls --json` shows both)",
            filtered.len(),
            crate::report::list_some(&filtered)
        ));
    }
    if !whole.is_empty() {
        warnings.push(format!(
            "--platform left {} index(es) pulled by digest whole: {}; whatever uses them names \
             them by that digest (the platform's components are pinned so in its digests \
             file), and a filtered index would have another digest that nothing names",
            whole.len(),
            crate::report::list_some(&whole)
        ));
    }
    images.sort_by(|a, b| {
        (a.archive.as_bytes(), a.path.as_bytes(), a.tag.as_bytes()).cmp(&(
            b.archive.as_bytes(),
            b.path.as_bytes(),
            b.tag.as_bytes(),
        ))
    });
    Ok(Plan {
        images,
        warnings,
        manifests,
        ..Plan::default()
    })
}

/// The image at `key` (repository, reference, platforms kept) filtered and walked, its
/// manifests read through `known`. `pinned_to` are the platforms its want asked for when the
/// key keeps all (an image pulled by digest), to tell whether the filter would have changed it.
async fn size_image(
    client: &RegistryClient,
    known: &ManifestCache,
    key: &(String, String, Vec<PlatformSpec>),
    pinned_to: &[PlatformSpec],
) -> Result<Sized, SourceError> {
    let (repo, reference, platforms) = key;
    let root = known.get(client, repo, reference).await?;
    let fetch = async |d: &Descriptor| {
        Ok::<_, SourceError>(known.by_digest(client, repo, &d.digest).await?)
    };
    let mut sized = Sized {
        manifests: Vec::new(),
        media_type: String::new(),
        rewritten: Vec::new(),
        parts: Parts::default(),
        source_digest: None,
        kept_whole: false,
        no_platform: false,
    };
    let root = match keep_platforms(&root, platforms, &fetch).await? {
        Kept::Whole => {
            if platforms.is_empty() && !pinned_to.is_empty() {
                sized.kept_whole =
                    !matches!(keep_platforms(&root, pinned_to, &fetch).await?, Kept::Whole);
            }
            root
        }
        Kept::Nothing => {
            sized.no_platform = true;
            return Ok(sized);
        }
        Kept::Rewritten { index, nested } => {
            sized.source_digest = Some(root.digest.clone());
            sized.rewritten = nested;
            sized.rewritten.push(index.clone());
            index
        }
    };
    let rewritten = &sized.rewritten;
    let graph = walk(root, async |d: &Descriptor| {
        match rewritten.iter().find(|m| m.digest == d.digest) {
            Some(m) => Ok(m.clone()),
            None => fetch(d).await,
        }
    })
    .await?;
    let mut parts = BTreeMap::new();
    for manifest in &graph.manifests {
        parts.insert(manifest.digest.clone(), manifest.bytes.len() as u64);
    }
    for blob in &graph.blobs {
        // One digest, one size: a descriptor naming a manifest (or another blob of the image)
        // with another size would make a layout no reader accepts.
        if let Some(known) = parts.insert(blob.digest.clone(), blob.size)
            && known != blob.size
        {
            return Err(SourceError::Missing(format!(
                "{}/{repo}:{reference}: {} is named with {known} and with {} bytes",
                client.registry(),
                blob.digest,
                blob.size
            )));
        }
    }
    sized.parts = Parts::from(parts);
    let root = graph.manifests.last().expect("a graph has its root");
    sized.media_type = root.media_type.clone();
    sized.manifests = graph.manifests.iter().map(|m| m.digest.clone()).collect();
    Ok(sized)
}
