//! The writes of a push and what each waits for, so that each goes out the moment it can: a
//! blob waits for nothing; a manifest waits for its blobs, its children and its subject in the
//! same repository (never an index before its children). A version tag's image is written by
//! the tag's PUT alone (the registry stores it by digest too, so what names it can follow), one
//! request instead of two; every other manifest is PUT by digest. Channel, catalog and referrer
//! tags are not here: they go after every write here is done, and the root of one that nothing
//! names is written by that tag's PUT alone.

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
        // Who puts each manifest into its repository: the first version tag's PUT for its
        // root, a PUT by digest for every other manifest the tags to write need.
        let mut placed: HashMap<(usize, &Digest), usize> = HashMap::new();
        for i in plan.written() {
            let (r, tag) = plan.tags[i];
            if tag.phase == Phase::Versions {
                let id = writes.add(Write::Tag(i));
                placed.entry((r, &tag.digest)).or_insert(id);
            }
        }
        // The root of a channel, catalog or referrer tag that nothing here names is left to
        // that tag's own PUT, after every write here.
        let later: HashSet<(usize, &Digest)> = plan
            .written()
            .map(|i| plan.tags[i])
            .filter(|(_, tag)| tag.phase != Phase::Versions)
            .map(|(r, tag)| (r, &tag.digest))
            .collect();
        for (r, repo) in inventory.repos.iter().enumerate() {
            let wanted = &plan.needs.manifests[r];
            let named = named_in(repo.manifests.iter().filter(|m| wanted.contains(&m.digest)));
            for manifest in &repo.manifests {
                let key = (r, &manifest.digest);
                let by_later_tag = later.contains(&key) && !named.contains(&manifest.digest);
                if wanted.contains(&manifest.digest) && !placed.contains_key(&key) && !by_later_tag
                {
                    placed.insert(key, writes.add(Write::Manifest(r, manifest)));
                }
            }
        }
        let waits_for = |r: usize, manifest: &Manifest| -> Vec<usize> {
            let mut ids = Vec::new();
            // Checked when the bundle was read; one that cannot be read names nothing.
            if let Ok(refs) = manifest.references() {
                ids.extend(refs.blobs.iter().filter_map(|b| blobs.get(&b.digest)));
                let named = refs.manifests.iter().chain(&refs.subject);
                ids.extend(named.filter_map(|d| placed.get(&(r, &d.digest))));
            }
            ids
        };
        for id in 0..writes.writes.len() {
            let waits = match writes.writes[id] {
                Write::Blob(_) => continue,
                Write::Manifest(r, manifest) => waits_for(r, manifest),
                Write::Tag(i) => {
                    let (r, tag) = plan.tags[i];
                    waits_for(r, inventory.repos[r].root_of(tag))
                }
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

/// Every manifest `manifests` name as a child or a subject.
fn named_in<'a>(manifests: impl Iterator<Item = &'a Manifest>) -> HashSet<Digest> {
    let mut named = HashSet::new();
    for manifest in manifests {
        // Checked when the bundle was read; one that cannot be read names nothing.
        if let Ok(refs) = manifest.references() {
            named.extend(refs.manifests.into_iter().map(|d| d.digest));
            named.extend(refs.subject.map(|d| d.digest));
        }
    }
    named
}
