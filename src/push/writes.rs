//! The writes of a push and what each waits for, so that each goes out the moment it can: a
//! blob waits for nothing; a manifest waits for its blobs, its children and its subject in the
//! same repository (never an index before its children); a version tag waits for its whole
//! graph. The root of a version tag that nothing else in the repository names is written by
//! the tag's PUT alone: one request instead of two. Channel, catalog and referrer tags are not
//! here: they go after every write here is done.

use std::collections::{HashMap, HashSet};

use super::inventory::{Inventory, Phase};
use super::plan::Plan;
use crate::digest::Digest;
use crate::manifest::Manifest;

/// One write.
#[derive(Debug, Clone, Copy)]
pub(super) enum Write<'a> {
    /// A blob, by its index in the plan's needed blobs, to every repository needing it.
    Blob(usize),
    /// A manifest of a repository (by index), PUT by digest.
    Manifest(usize, &'a Manifest),
    /// A version tag, by its index in the plan's tags.
    Tag(usize),
}

/// Every write of a push with what it waits for.
#[derive(Debug, Default)]
pub(super) struct Writes<'a> {
    /// The writes; blobs first, in the plan's order.
    pub writes: Vec<Write<'a>>,
    /// For each write, how many others it waits for.
    pub waits: Vec<usize>,
    /// For each write, the writes waiting for it.
    pub dependents: Vec<Vec<usize>>,
}

impl<'a> Writes<'a> {
    /// The writes of `plan`; only its blobs for a dry run, which writes nothing else.
    pub fn of(inventory: &'a Inventory, plan: &Plan<'a>, dry_run: bool) -> Self {
        let mut writes = Writes::default();
        let blobs: HashMap<&Digest, usize> = plan
            .needs
            .blobs
            .iter()
            .enumerate()
            .map(|(k, (blob, _))| (&blob.digest, writes.add(Write::Blob(k))))
            .collect();
        if dry_run {
            return writes;
        }
        let mut manifests: HashMap<(usize, &Digest), usize> = HashMap::new();
        for (r, repo) in inventory.repos.iter().enumerate() {
            let wanted = &plan.needs.manifests[r];
            let by_tag = written_by_tag(inventory, plan, r);
            for manifest in &repo.manifests {
                if wanted.contains(&manifest.digest) && !by_tag.contains(&manifest.digest) {
                    let id = writes.add(Write::Manifest(r, manifest));
                    manifests.insert((r, &manifest.digest), id);
                }
            }
        }
        let waits_for = |r: usize, manifest: &Manifest| -> Vec<usize> {
            let mut ids = Vec::new();
            // Checked when the bundle was read; one that cannot be read names nothing.
            if let Ok(refs) = manifest.references() {
                ids.extend(refs.blobs.iter().filter_map(|b| blobs.get(&b.digest)));
                let named = refs.manifests.iter().chain(&refs.subject);
                ids.extend(named.filter_map(|d| manifests.get(&(r, &d.digest))));
            }
            ids
        };
        for id in 0..writes.writes.len() {
            if let Write::Manifest(r, manifest) = writes.writes[id] {
                writes.wait(id, waits_for(r, manifest));
            }
        }
        for i in plan.written() {
            let (r, tag) = plan.tags[i];
            if tag.phase != Phase::Versions {
                continue;
            }
            let id = writes.add(Write::Tag(i));
            let waits = match manifests.get(&(r, &tag.digest)) {
                Some(&root) => vec![root],
                // Written by this tag's PUT: it waits for what the root itself waits for.
                None => waits_for(r, inventory.repos[r].manifest(&tag.digest)),
            };
            writes.wait(id, waits);
        }
        writes
    }

    fn add(&mut self, write: Write<'a>) -> usize {
        self.writes.push(write);
        self.waits.push(0);
        self.dependents.push(Vec::new());
        self.writes.len() - 1
    }

    /// Makes `id` wait for each of `on` (once each, however often a manifest names it).
    fn wait(&mut self, id: usize, mut on: Vec<usize>) {
        on.sort_unstable();
        on.dedup();
        self.waits[id] = on.len();
        for other in on {
            self.dependents[other].push(id);
        }
    }
}

/// The roots of repository `r`'s version tags that their tag's PUT writes: those no other
/// manifest the push writes there names as a child or a subject (what names them must find
/// them there first). Channel and referrer tags come later, so their roots are written by
/// digest.
fn written_by_tag<'a>(inventory: &'a Inventory, plan: &Plan<'a>, r: usize) -> HashSet<&'a Digest> {
    let repo = &inventory.repos[r];
    let wanted = &plan.needs.manifests[r];
    let mut named: HashSet<Digest> = HashSet::new();
    for manifest in repo.manifests.iter().filter(|m| wanted.contains(&m.digest)) {
        if let Ok(refs) = manifest.references() {
            named.extend(refs.manifests.into_iter().map(|d| d.digest));
            named.extend(refs.subject.map(|d| d.digest));
        }
    }
    plan.written()
        .map(|i| plan.tags[i])
        .filter(|(tag_repo, tag)| *tag_repo == r && tag.phase == Phase::Versions)
        .map(|(_, tag)| &tag.digest)
        .filter(|digest| !named.contains(*digest))
        .collect()
}
