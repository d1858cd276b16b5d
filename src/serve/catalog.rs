//! What `ferry serve` answers from, built once at start: every repository of the served
//! bundles with its tags, its manifests (small, checked against their digests, kept in memory),
//! where each of its blobs lies in the archive files, and its referrers. Bundles are checked as
//! `push` checks them, so a registry fed by `serve` gets what `push` would have sent.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::error::ServeError;
use super::options::ServedBundle;
use crate::bundle::contents::check_bundle;
use crate::bundle::names::target_path;
use crate::bundle::{Bundle, BundleError, BundleMetadata};
use crate::digest::Digest;
use crate::manifest::{Descriptor, Manifest};
use crate::reference::{join, validate_repository};
use crate::segment::BlobSource;

/// One repository as served.
#[derive(Debug, Default)]
pub struct Repository {
    /// Tag → the manifest it names.
    pub tags: BTreeMap<String, Digest>,
    /// Every manifest a tag reaches, by digest.
    pub manifests: HashMap<Digest, Arc<Manifest>>,
    /// Every blob a manifest names, by digest: where its bytes lie.
    pub blobs: HashMap<Digest, BlobSource>,
    /// Subject digest → the manifests of this repository that name it, as descriptors.
    pub referrers: HashMap<Digest, Vec<Descriptor>>,
}

/// Every repository of the served bundles.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Repositories by name.
    pub repositories: BTreeMap<String, Repository>,
    /// Tags whose digest one served bundle gives and a later one (pulled against it) replaces,
    /// one line each: what is served and what it replaced.
    pub superseded: Vec<String>,
}

/// What the catalog holds, for the readiness line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatalogSize {
    /// Repositories.
    pub repositories: usize,
    /// Tags.
    pub tags: usize,
    /// Distinct manifests.
    pub manifests: usize,
    /// Distinct blobs.
    pub blobs: usize,
}

/// One served bundle's word on a tag.
struct Claim {
    /// The served bundle's place in the list.
    bundle: usize,
    digest: Digest,
    dir: PathBuf,
    archive: String,
}

/// Each served bundle's `bundle.json` SHA-256 and its base's (hex), by place.
type Lineage = [Option<(Digest, Option<String>)>];

/// True when the bundle at `newer` was made, directly or through differential bundles between,
/// against the one at `older` (`--since-bundle`), or against a bundle with the same
/// `bundle.json`: its tags are the later word.
fn made_against(lineage: &Lineage, newer: usize, older: usize) -> bool {
    let Some((older_sha, _)) = &lineage[older] else {
        return false;
    };
    let mut at = newer;
    // Each step goes to another bundle; more steps than bundles would be a loop.
    for _ in 0..lineage.len() {
        let Some(base) = lineage[at].as_ref().and_then(|(_, base)| base.as_deref()) else {
            return false;
        };
        if older_sha.hex() == base {
            return true;
        }
        let Some(next) = lineage
            .iter()
            .position(|l| l.as_ref().is_some_and(|(own, _)| own.hex() == base))
        else {
            return false;
        };
        at = next;
    }
    false
}

/// The claim a tag is served from: the only digest given, or that of the bundle made against
/// every bundle that gives another. Any other disagreement is refused, naming two bundles
/// neither of which was made against the other.
fn settle<'a>(lineage: &Lineage, name: &str, claims: &'a [Claim]) -> Result<&'a Claim, ServeError> {
    let first = &claims[0];
    if claims.iter().all(|c| c.digest == first.digest) {
        return Ok(first);
    }
    let related = |c: &Claim, d: &Claim| {
        c.digest == d.digest
            || made_against(lineage, c.bundle, d.bundle)
            || made_against(lineage, d.bundle, c.bundle)
    };
    if let Some(later) = claims.iter().find(|c| {
        claims
            .iter()
            .all(|d| d.digest == c.digest || made_against(lineage, c.bundle, d.bundle))
    }) {
        return Ok(later);
    }
    let (one, other) = claims
        .iter()
        .enumerate()
        .find_map(|(i, c)| {
            claims[i + 1..]
                .iter()
                .find(|d| !related(c, d))
                .map(|d| (c, d))
        })
        .or_else(|| {
            claims
                .iter()
                .find(|c| c.digest != first.digest)
                .map(|c| (first, c))
        })
        .expect("claims that disagree hold two digests");
    let side = |c: &Claim| format!("{} in {} ({})", c.digest, c.archive, c.dir.display());
    Err(ServeError::Conflict {
        name: name.to_string(),
        first: side(one),
        second: side(other),
    })
}

/// A blob a differential bundle left out: served from whichever bundle holds it.
struct Wanted {
    repository: String,
    digest: Digest,
    size: u64,
    dir: PathBuf,
}

impl Catalog {
    /// Opens and checks every bundle and indexes what it holds under `prefix`. Refuses, naming
    /// the problem: a bundle whose files do not match `bundle.json` or whose tags do not check
    /// out, one name held by two bundles with different digests (unless one was pulled against
    /// every other that disagrees: its digest is then served), and a blob left out of a
    /// differential bundle that no served bundle holds. Blocking (call it on a blocking thread
    /// inside the runtime).
    pub fn build(
        bundles: &[ServedBundle],
        prefix: &str,
        modules_path: Option<&str>,
        handle: &tokio::runtime::Handle,
    ) -> Result<Catalog, ServeError> {
        let mut catalog = Catalog::default();
        // Every bundle's word on every tag, settled once all are read: which one is served
        // must not depend on the order the directories are given in.
        let mut claims: BTreeMap<(String, String), Vec<Claim>> = BTreeMap::new();
        let mut held: HashMap<(Digest, u64), BlobSource> = HashMap::new();
        let mut wanted: Vec<Wanted> = Vec::new();
        let lineage = bundles
            .iter()
            .map(|served| {
                BundleMetadata::read_lineage(&served.dir).map_err(|source| ServeError::Bundle {
                    dir: served.dir.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for (place, served) in bundles.iter().enumerate() {
            let refused = |problems: Vec<String>| ServeError::Refused {
                dir: served.dir.clone(),
                problems,
            };
            let mut bundle = Bundle::open(&served.dir).map_err(|source| ServeError::Bundle {
                dir: served.dir.clone(),
                source,
            })?;
            let problems = bundle
                .inconsistencies()
                .map_err(|source| ServeError::Bundle {
                    dir: served.dir.clone(),
                    source,
                })?;
            if !problems.is_empty() {
                return Err(refused(problems));
            }
            let (opened, contents) = check_bundle(&mut bundle, handle).map_err(|e| match e {
                BundleError::Inconsistent { problems } => refused(problems),
                source => ServeError::Bundle {
                    dir: served.dir.clone(),
                    source,
                },
            })?;
            for (layouts, found) in opened.iter().zip(contents) {
                for tag in found.tags {
                    let layout = &layouts.layouts[tag.layout];
                    let name = join(
                        prefix,
                        &target_path(&layout.path, &served.catalog, modules_path),
                    );
                    if name.is_empty() {
                        return Err(ServeError::RootNeedsPrefix {
                            dir: served.dir.clone(),
                            archive: layouts.archive.clone(),
                        });
                    }
                    validate_repository(&name).map_err(|reason| {
                        refused(vec![format!(
                            "{}: layout '{}' cannot be served as '{name}': {reason}",
                            layouts.archive, layout.path
                        )])
                    })?;
                    claims
                        .entry((name.clone(), tag.image.tag.clone()))
                        .or_default()
                        .push(Claim {
                            bundle: place,
                            digest: tag.image.digest.clone(),
                            dir: served.dir.clone(),
                            archive: layouts.archive.clone(),
                        });
                    let repository = catalog.repositories.entry(name.clone()).or_default();
                    for manifest in &tag.graph.manifests {
                        if repository.manifests.contains_key(&manifest.digest) {
                            continue;
                        }
                        if let Some((subject, descriptor)) = referrer(manifest) {
                            repository
                                .referrers
                                .entry(subject)
                                .or_default()
                                .push(descriptor);
                        }
                        repository
                            .manifests
                            .insert(manifest.digest.clone(), Arc::new(manifest.clone()));
                    }
                    for blob in &tag.graph.blobs {
                        match layouts.blob(&layout.path, &blob.digest) {
                            Some(source) => {
                                held.entry((blob.digest.clone(), blob.size))
                                    .or_insert_with(|| source.clone());
                                repository.blobs.insert(blob.digest.clone(), source);
                            }
                            None => wanted.push(Wanted {
                                repository: name.clone(),
                                digest: blob.digest.clone(),
                                size: blob.size,
                                dir: served.dir.clone(),
                            }),
                        }
                    }
                }
            }
        }
        for ((name, tag), claims) in &claims {
            let served = settle(&lineage, &format!("{name}:{tag}"), claims)?;
            let mut replaced: Vec<String> = claims
                .iter()
                .filter(|c| c.digest != served.digest)
                .map(|c| format!("{} in {}", c.digest, c.dir.display()))
                .collect();
            replaced.sort();
            replaced.dedup();
            if !replaced.is_empty() {
                catalog.superseded.push(format!(
                    "{name}:{tag} is served as {} from {}, the latest bundle of the line; it \
                     replaces {}",
                    served.digest,
                    served.dir.display(),
                    replaced.join(", ")
                ));
            }
            catalog
                .repositories
                .get_mut(name)
                .expect("a claimed tag's repository is in the catalog")
                .tags
                .insert(tag.clone(), served.digest.clone());
        }
        catalog.fill_left_out(wanted, &held)?;
        for repository in catalog.repositories.values_mut() {
            for list in repository.referrers.values_mut() {
                list.sort_by(|a, b| a.digest.cmp(&b.digest));
            }
        }
        Ok(catalog)
    }

    /// Serves the blobs differential bundles left out from the bundles that hold them (their
    /// base, given beside them); one that none holds makes the catalog incomplete.
    fn fill_left_out(
        &mut self,
        wanted: Vec<Wanted>,
        held: &HashMap<(Digest, u64), BlobSource>,
    ) -> Result<(), ServeError> {
        let mut missing: BTreeMap<PathBuf, std::collections::BTreeSet<Digest>> = BTreeMap::new();
        for blob in wanted {
            match held.get(&(blob.digest.clone(), blob.size)) {
                Some(source) => {
                    self.repositories
                        .get_mut(&blob.repository)
                        .expect("a wanted blob's repository is in the catalog")
                        .blobs
                        .insert(blob.digest, source.clone());
                }
                None => {
                    missing.entry(blob.dir).or_default().insert(blob.digest);
                }
            }
        }
        match missing.into_iter().next() {
            None => Ok(()),
            Some((dir, digests)) => Err(ServeError::BaseMissing {
                dir,
                count: digests.len(),
                example: digests.into_iter().next().expect("missing ones are listed"),
            }),
        }
    }

    /// How much it holds.
    pub fn size(&self) -> CatalogSize {
        let mut manifests = std::collections::HashSet::new();
        let mut blobs = std::collections::HashSet::new();
        let mut tags = 0;
        for repository in self.repositories.values() {
            tags += repository.tags.len();
            manifests.extend(repository.manifests.keys());
            blobs.extend(repository.blobs.keys());
        }
        CatalogSize {
            repositories: self.repositories.len(),
            tags,
            manifests: manifests.len(),
            blobs: blobs.len(),
        }
    }
}

/// The fields of a manifest the referrers API reports.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReferrerShape {
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    subject: Option<Descriptor>,
}

/// For a manifest with a `subject`: the subject's digest and the descriptor the referrers API
/// lists, its `artifactType` that of the manifest, else its config's media type (as the
/// distribution spec says), its annotations those of the manifest.
fn referrer(manifest: &Manifest) -> Option<(Digest, Descriptor)> {
    let shape: ReferrerShape = serde_json::from_slice(&manifest.bytes).ok()?;
    let subject = shape.subject?;
    let mut descriptor = manifest.descriptor();
    let artifact_type = shape
        .artifact_type
        .or_else(|| shape.config.map(|c| c.media_type));
    if let Some(artifact_type) = artifact_type {
        descriptor
            .extra
            .insert("artifactType".into(), artifact_type.into());
    }
    descriptor.annotations = shape.annotations;
    Some((subject.digest, descriptor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::OCI_MANIFEST;

    #[test]
    fn a_referrer_is_described_by_its_artifact_type_or_config() {
        let subject = Digest::of(b"image");
        let config = Digest::of(b"{}");
        let with_type = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/x-sbom",
            "config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{config}","size":2}},
            "layers":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{subject}","size":5}},
            "annotations":{{"a":"b"}}}}"#
        );
        let manifest = Manifest::from_bytes(with_type.into_bytes(), None).unwrap();
        let (of, descriptor) = referrer(&manifest).unwrap();
        assert_eq!(of, subject);
        assert_eq!(descriptor.extra["artifactType"], "application/x-sbom");
        assert_eq!(descriptor.annotations["a"], "b");
        assert_eq!(descriptor.digest, manifest.digest);

        let by_config = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
            "config":{{"mediaType":"application/x-sig","digest":"{config}","size":2}},
            "layers":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{subject}","size":5}}}}"#
        );
        let manifest = Manifest::from_bytes(by_config.into_bytes(), None).unwrap();
        assert_eq!(
            referrer(&manifest).unwrap().1.extra["artifactType"],
            "application/x-sig"
        );

        let plain = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
            "config":{{"mediaType":"application/x-sig","digest":"{config}","size":2}},"layers":[]}}"#
        );
        assert!(referrer(&Manifest::from_bytes(plain.into_bytes(), None).unwrap()).is_none());
    }
}
