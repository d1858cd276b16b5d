//! What a bundle holds, as push needs it: per layout the repository it goes to, its manifests
//! (children before parents), its tags, and every blob with the place in the archive files it is
//! read from. Built offline from the tar indexes, before the target is contacted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::options::Aliases;
use crate::bundle::contents::check_bundle;
use crate::bundle::names::target_path;
use crate::bundle::{BaseRecord, Bundle, BundleError};
use crate::digest::Digest;
use crate::graph::Graph;
use crate::manifest::Manifest;
use crate::reference::{join, validate_repository};
use crate::referrer_tags::{schema_tag, subject_of};
use crate::segment::BlobSource;

/// One tag to push.
#[derive(Debug, Clone)]
pub struct TagItem {
    /// The tag.
    pub name: String,
    /// The manifest or index it points to.
    pub digest: Digest,
    /// That manifest's place in its layout's [`RepoItem::manifests`]: a layout of thousands
    /// of tags would otherwise be searched from the start for each.
    pub root: usize,
    /// Every manifest of its graph, children before parents (the root last).
    pub manifests: Vec<Digest>,
    /// When it is written.
    pub phase: Phase,
    /// For a referrers tag-schema index (`sha256-<hex>`): the manifest whose referrers it
    /// lists. Push merges it with what the target lists already.
    pub schema_of: Option<Digest>,
}

/// When a tag is written, so that no tag points at something incomplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Versions and everything else.
    Versions,
    /// Channel aliases and module catalog entries ([`Aliases`]): after every version.
    Aliases,
    /// Referrer tags (`sha256-<hex>` and cosign's): after their subjects.
    Referrers,
}

/// One layout and the repository it goes to.
#[derive(Debug, Clone)]
pub struct RepoItem {
    /// Its path in the archive (`""` for the root).
    pub path: String,
    /// The repository at the target.
    pub repository: String,
    /// Its manifests, each once, children before parents.
    pub manifests: Vec<Manifest>,
    /// Its tags.
    pub tags: Vec<TagItem>,
}

/// One blob, and every repository that needs it.
#[derive(Debug, Clone)]
pub struct BlobItem {
    /// The blob.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Where its bytes lie in the bundle; `None` for a blob a differential bundle left out
    /// (the target must have it).
    pub source: Option<BlobSource>,
    /// Indexes into [`Inventory::repos`], in order.
    pub repos: Vec<usize>,
}

/// Everything a push sends.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Every layout.
    pub repos: Vec<RepoItem>,
    /// Every blob, each once.
    pub blobs: Vec<BlobItem>,
    /// For every manifest, the blobs it needs (through its children too), as indexes into
    /// `blobs`, sorted: a bundle of thousands of manifests names each blob many times.
    pub needs: HashMap<Digest, Box<[usize]>>,
    /// For a differential bundle: its base, and the blobs the target must have already.
    pub base: Option<BaseRecord>,
}

impl RepoItem {
    /// The manifest or index one of its tags points to.
    pub fn root_of(&self, tag: &TagItem) -> &Manifest {
        &self.manifests[tag.root]
    }
}

impl Inventory {
    /// Reads every archive's index and layouts and checks them as `verify` does (every
    /// descriptor's blob there with its size, every manifest against its digest, the tags
    /// exactly those `bundle.json` lists, each archive's blobs as it lists them: the lists are
    /// taken out of `bundle`); a bundle with any problem is refused, all of them named.
    /// `target` is the repository root at the target; `modules_path` replaces the
    /// leading catalog path of layout paths. Blocking (call it on a blocking thread inside the
    /// runtime: manifests are walked with the async walker).
    pub fn read(
        bundle: &mut Bundle,
        target: &str,
        modules_path: Option<&str>,
        aliases: &Aliases,
        handle: &tokio::runtime::Handle,
    ) -> Result<Inventory, BundleError> {
        let mut inventory = Inventory::default();
        let (opened, contents) = check_bundle(bundle, handle)?;
        let mut blob_index: BTreeMap<Digest, usize> = BTreeMap::new();
        for (layouts, found) in opened.iter().zip(contents) {
            let mut by_layout: Vec<Vec<(String, Digest, Arc<Graph>)>> =
                vec![Vec::new(); layouts.layouts.len()];
            for tag in found.tags {
                by_layout[tag.layout].push((tag.image.tag, tag.image.digest, tag.graph));
            }
            for (layout, graphs) in layouts.layouts.iter().zip(by_layout) {
                let bad = |reason: String| BundleError::BadLayout {
                    archive: layouts.archive.clone(),
                    layout: layout.path.clone(),
                    reason,
                };
                let path = target_path(&layout.path, &aliases.catalog, modules_path);
                let repository = join(target, &path);
                validate_repository(&repository).map_err(|e| bad(e.to_string()))?;
                let mut manifests: Vec<Manifest> = Vec::new();
                // Each manifest's place in `manifests`.
                let mut seen: HashMap<Digest, usize> = HashMap::new();
                let mut tags = Vec::new();
                // Referrer tags go after the tags holding their subject, so that no manifest
                // reaches the target before what it refers to.
                for (tag, digest, graph) in in_push_order(graphs) {
                    let repo_index = inventory.repos.len();
                    for blob in &graph.blobs {
                        let index = *blob_index.entry(blob.digest.clone()).or_insert_with(|| {
                            inventory.blobs.push(BlobItem {
                                digest: blob.digest.clone(),
                                size: blob.size,
                                // Checked above: there with its size, or left out on purpose.
                                source: layouts.blob(&layout.path, &blob.digest),
                                repos: Vec::new(),
                            });
                            inventory.blobs.len() - 1
                        });
                        let repos = &mut inventory.blobs[index].repos;
                        if repos.last() != Some(&repo_index) {
                            repos.push(repo_index);
                        }
                    }
                    for manifest in &graph.manifests {
                        needs_of(&mut inventory.needs, &blob_index, manifest).map_err(bad)?;
                        seen.entry(manifest.digest.clone()).or_insert_with(|| {
                            manifests.push(manifest.clone());
                            manifests.len() - 1
                        });
                    }
                    let root = graph.manifests.last().expect("a graph has its root");
                    let root_place = seen[&root.digest];
                    let phase = if subject_of(&tag).is_some() {
                        Phase::Referrers
                    } else if aliases.channels.contains(&tag) || layout.path == aliases.catalog {
                        Phase::Aliases
                    } else {
                        Phase::Versions
                    };
                    tags.push(TagItem {
                        schema_of: subject_of(&tag)
                            .filter(|d| root.is_index() && schema_tag(d) == tag),
                        name: tag,
                        digest,
                        root: root_place,
                        manifests: graph.manifests.iter().map(|m| m.digest.clone()).collect(),
                        phase,
                    });
                }
                inventory.repos.push(RepoItem {
                    path: layout.path.clone(),
                    repository,
                    manifests,
                    tags,
                });
            }
        }
        inventory.base = bundle.metadata.as_ref().and_then(|m| m.base.clone());
        Ok(inventory)
    }

    /// Tags that layouts going to one repository (`--modules-path-suffix` can send two there)
    /// give different images, one line each naming both: whichever were written last would
    /// win at the target.
    pub fn conflicting_tags(&self) -> Vec<String> {
        let mut by_repository: BTreeMap<&str, Vec<&RepoItem>> = BTreeMap::new();
        for repo in &self.repos {
            by_repository
                .entry(repo.repository.as_str())
                .or_default()
                .push(repo);
        }
        let mut conflicts = Vec::new();
        for (repository, repos) in by_repository.into_iter().filter(|(_, r)| r.len() > 1) {
            let mut first: BTreeMap<&str, (&Digest, &str)> = BTreeMap::new();
            for repo in repos {
                for tag in &repo.tags {
                    let (digest, path) = *first
                        .entry(tag.name.as_str())
                        .or_insert((&tag.digest, repo.path.as_str()));
                    if digest != &tag.digest {
                        conflicts.push(format!(
                            "{repository}:{} is {digest} from layout '{path}' and {} from                              layout '{}'",
                            tag.name, tag.digest, repo.path
                        ));
                    }
                }
            }
        }
        conflicts
    }

    /// The blobs `manifest` needs, its children's included; none for a manifest not in the
    /// bundle.
    pub fn blobs_needed_by(&self, manifest: &Digest) -> impl Iterator<Item = &BlobItem> {
        self.needs
            .get(manifest)
            .into_iter()
            .flat_map(|needs| needs.iter().map(|&k| &self.blobs[k]))
    }

    /// Bytes of all blobs.
    pub fn blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.size).sum()
    }

    /// Every tag, as (repository index, tag).
    pub fn tags(&self) -> impl Iterator<Item = (usize, &TagItem)> {
        self.repos
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.tags.iter().map(move |t| (i, t)))
    }
}

/// Tags in the order their manifests may reach a registry: every other tag in layout order,
/// then referrer tags, each after the tag whose graph holds its subject (a signature of an SBOM
/// after the SBOM). A referrer of something outside the layout goes once no other waiting
/// graph holds its subject, so what refers to it still comes after it.
fn in_push_order(graphs: Vec<(String, Digest, Arc<Graph>)>) -> Vec<(String, Digest, Arc<Graph>)> {
    let (mut waiting, mut ordered): (Vec<_>, Vec<_>) = graphs
        .into_iter()
        .partition(|(tag, _, _)| subject_of(tag).is_some());
    let mut placed: HashSet<Digest> = ordered
        .iter()
        .flat_map(|(_, _, g): &(_, _, Arc<Graph>)| g.manifests.iter().map(|m| m.digest.clone()))
        .collect();
    while !waiting.is_empty() {
        let (mut ready, mut rest): (Vec<_>, Vec<_>) =
            waiting.into_iter().partition(|(tag, _, _)| {
                subject_of(tag).is_some_and(|subject| placed.contains(&subject))
            });
        if ready.is_empty() {
            // Only referrers of what the layout lacks are left: those whose subject no waiting
            // graph holds go next.
            let held: HashSet<&Digest> = rest
                .iter()
                .flat_map(|(_, _, g)| g.manifests.iter().map(|m| &m.digest))
                .collect();
            let outside: Vec<bool> = rest
                .iter()
                .map(|(tag, _, _)| !subject_of(tag).is_some_and(|s| held.contains(&s)))
                .collect();
            let mut flags = outside.into_iter();
            (ready, rest) = rest.into_iter().partition(|_| flags.next() == Some(true));
            if ready.is_empty() {
                // Referrers of each other's roots, round and round: as they came.
                ordered.extend(rest);
                break;
            }
        }
        for (_, _, graph) in &ready {
            placed.extend(graph.manifests.iter().map(|m| m.digest.clone()));
        }
        ordered.extend(ready);
        waiting = rest;
    }
    ordered
}

/// Records the blobs `manifest` needs, its children's included (children come first in a
/// walk, so theirs are known).
fn needs_of(
    needs: &mut HashMap<Digest, Box<[usize]>>,
    blob_index: &BTreeMap<Digest, usize>,
    manifest: &Manifest,
) -> Result<(), String> {
    if needs.contains_key(&manifest.digest) {
        return Ok(());
    }
    let refs = manifest.references().map_err(|e| e.to_string())?;
    // The walk put every blob a manifest names among its graph's blobs (a layer that is also
    // a manifest of the image included), and those are all in the index.
    let mut own = Vec::with_capacity(refs.blobs.len());
    for blob in &refs.blobs {
        let place = blob_index.get(&blob.digest).ok_or_else(|| {
            format!(
                "{} names blob {}, which its graph does not hold",
                manifest.digest, blob.digest
            )
        })?;
        own.push(*place);
    }
    for child in &refs.manifests {
        if let Some(theirs) = needs.get(&child.digest) {
            own.extend(theirs.iter());
        }
    }
    own.sort_unstable();
    own.dedup();
    needs.insert(manifest.digest.clone(), own.into_boxed_slice());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A graph of one manifest, unique by `seed`.
    fn graph(seed: &str) -> Arc<Graph> {
        let bytes = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{zero}","size":2}},"layers":[],"annotations":{{"seed":"{seed}"}}}}"#,
            zero = "0".repeat(64)
        );
        let manifest = Manifest::from_bytes(bytes.into_bytes(), None).unwrap();
        Arc::new(Graph {
            manifests: vec![manifest],
            ..Graph::default()
        })
    }

    fn referrer_tag(of: &Digest) -> String {
        format!("sha256-{}.sig", &of.to_string()[7..])
    }

    #[test]
    fn referrers_follow_their_subjects_even_when_the_first_subject_is_outside_the_layout() {
        let image = graph("image");
        let outside = graph("not in the layout").manifests[0].digest.clone();
        // An SBOM of something the layout lacks, and a signature of that SBOM listed first.
        let sbom = graph("sbom");
        let sbom_sig = graph("signature of the sbom");
        let image_sig = graph("signature of the image");
        let root = |g: &Arc<Graph>| g.manifests[0].digest.clone();
        let graphs = vec![
            (
                referrer_tag(&root(&sbom)),
                root(&sbom_sig),
                sbom_sig.clone(),
            ),
            (
                referrer_tag(&root(&image)),
                root(&image_sig),
                image_sig.clone(),
            ),
            (referrer_tag(&outside), root(&sbom), sbom.clone()),
            ("v1".to_string(), root(&image), image.clone()),
        ];
        let order: Vec<String> = in_push_order(graphs)
            .into_iter()
            .map(|(tag, _, _)| tag)
            .collect();
        let at = |tag: &str| order.iter().position(|t| t == tag).unwrap();
        assert_eq!(order.len(), 4);
        assert_eq!(at("v1"), 0);
        assert!(at(&referrer_tag(&root(&image))) > at("v1"));
        assert!(
            at(&referrer_tag(&root(&sbom))) > at(&referrer_tag(&outside)),
            "{order:?}"
        );
    }

    #[test]
    fn a_manifest_needs_its_blobs_and_its_childrens_as_places_in_the_blob_list() {
        let digest = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let child = Manifest::from_bytes(
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"a/b","digest":"{}","size":2}},"layers":[{{"mediaType":"a/c","digest":"{}","size":3}}]}}"#,
                digest('a'),
                digest('b')
            )
            .into_bytes(),
            None,
        )
        .unwrap();
        let index = Manifest::from_bytes(
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{}}}]}}"#,
                child.digest,
                child.bytes.len()
            )
            .into_bytes(),
            None,
        )
        .unwrap();
        let blob_index: BTreeMap<Digest, usize> =
            [(digest('c'), 0), (digest('b'), 2), (digest('a'), 1)]
                .into_iter()
                .map(|(d, k)| (d.parse().unwrap(), k))
                .collect();
        let mut needs = HashMap::new();
        needs_of(&mut needs, &blob_index, &child).unwrap();
        needs_of(&mut needs, &blob_index, &index).unwrap();
        assert_eq!(&*needs[&child.digest], &[1, 2]);
        assert_eq!(
            &*needs[&index.digest],
            &[1, 2],
            "the index needs what its child needs"
        );
        // A blob missing from the list is an error, not a manifest sent before its blob.
        let mut partial = blob_index.clone();
        partial.remove(&digest('b').parse().unwrap());
        let err = needs_of(&mut HashMap::new(), &partial, &child).unwrap_err();
        assert!(err.contains(&digest('b')), "{err}");
    }
}
