//! `bundle.json`'s lists of blobs held to what the bundle's tags need: each archive's list (what
//! a target that took the bundle has from it) and a differential bundle's left-out list (what
//! such a target had before). A later `pull --since-bundle` reads these lists alone, from
//! `bundle.json`, and leaves out every blob they name; so a listed blob that no push of this
//! bundle delivers (absent from the archive, or there but needed by no tag) would be left out of
//! the next bundle while no target ever got it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use super::layouts::ArchiveLayouts;
use super::metadata::{BlobRecord, BundleMetadata};
use crate::digest::Digest;
use crate::graph::Graph;

/// How many digests a problem names before it only counts the rest.
const NAMED: usize = 3;

/// The check, fed archive by archive after its tags were followed.
#[derive(Debug)]
pub struct BlobLists {
    /// Whether `bundle.json` lists blobs at all (not before ferry 0.2, not a d8 bundle).
    lists_blobs: bool,
    /// Blobs a tag needs that its archive does not hold (a differential bundle's left-out
    /// ones), with the size the descriptor gives.
    absent: BTreeSet<(Digest, u64)>,
    /// Whether some archive had a tag that is not whole: what its tags need is then not known,
    /// and the problems already found say what is wrong.
    incomplete: bool,
    /// Every problem found so far.
    problems: Vec<String>,
}

impl BlobLists {
    /// A check of the lists in `metadata`.
    pub fn new(metadata: Option<&BundleMetadata>) -> BlobLists {
        BlobLists {
            lists_blobs: metadata.is_some_and(BundleMetadata::lists_blobs),
            absent: BTreeSet::new(),
            incomplete: false,
            problems: Vec::new(),
        }
    }

    /// Holds `listed`, `bundle.json`'s list for the archive of `layouts`, to the blobs and
    /// manifests its tags need that it holds, each with the size of its entry. `tags` gives
    /// each tag found whole as its layout (a place in `layouts.layouts`) and its graph;
    /// `whole` says whether every tag of the archive was (if not, the list is not held to it).
    pub fn archive<'a>(
        &mut self,
        listed: &[BlobRecord],
        layouts: &ArchiveLayouts,
        tags: impl Iterator<Item = (usize, &'a Arc<Graph>)>,
        whole: bool,
    ) {
        if !whole {
            self.incomplete = true;
            return;
        }
        let mut held: Vec<(&str, u64)> = Vec::new();
        // Tags naming one manifest share one graph: it is gone through once.
        let mut graphs = HashSet::new();
        for (layout, graph) in tags {
            if !graphs.insert((layout, Arc::as_ptr(graph))) {
                continue;
            }
            let layout = &layouts.layouts[layout].path;
            for manifest in &graph.manifests {
                held.push((manifest.digest.hex(), manifest.bytes.len() as u64));
            }
            for blob in &graph.blobs {
                match layouts.blob_location(layout, &blob.digest) {
                    Some(location) => held.push((blob.digest.hex(), location.size)),
                    None => {
                        self.absent.insert((blob.digest.clone(), blob.size));
                    }
                }
            }
        }
        if !self.lists_blobs {
            return;
        }
        held.sort_unstable();
        held.dedup();
        let mut said: Vec<(&str, u64)> = listed.iter().map(|b| (b.digest.hex(), b.size)).collect();
        said.sort_unstable();
        said.dedup();
        let not_held: Vec<(&str, u64)> = said
            .iter()
            .filter(|b| held.binary_search(b).is_err())
            .copied()
            .collect();
        let unlisted: Vec<(&str, u64)> = held
            .iter()
            .filter(|b| said.binary_search(b).is_err())
            .copied()
            .collect();
        let archive = &layouts.archive;
        if !not_held.is_empty() {
            self.problems.push(format!(
                "bundle.json lists {} {archive} does not hold for its tags ({}); a pull \
                 --since-bundle against this bundle would leave {} out",
                count(not_held.len()),
                named(&not_held),
                them(not_held.len()),
            ));
        }
        if !unlisted.is_empty() {
            self.problems.push(format!(
                "{archive} holds {} its tags need that bundle.json does not list ({})",
                count(unlisted.len()),
                named(&unlisted),
            ));
        }
    }

    /// Notes an archive that could not be read: what its tags need is not known.
    pub fn unreadable(&mut self) {
        self.incomplete = true;
    }

    /// Holds `left_out`, a differential bundle's left-out list, to the blobs its tags need and
    /// its archives lack (when every archive's tags were whole); then every problem found.
    pub fn finish(mut self, left_out: &BTreeMap<Digest, u64>) -> Vec<String> {
        if self.incomplete {
            return self.problems;
        }
        let unneeded: Vec<(&str, u64)> = left_out
            .iter()
            .filter(|(digest, size)| !self.absent.contains(&((*digest).clone(), **size)))
            .map(|(digest, size)| (digest.hex(), *size))
            .collect();
        if !unneeded.is_empty() {
            self.problems.push(format!(
                "bundle.json's base lists {} left out that no tag of the bundle needs ({}); a \
                 pull --since-bundle against this bundle would take {} as at its target",
                count(unneeded.len()),
                named(&unneeded),
                them(unneeded.len()),
            ));
        }
        self.problems
    }
}

/// `1 blob`, `3 blobs`.
fn count(n: usize) -> String {
    if n == 1 {
        "1 blob".into()
    } else {
        format!("{n} blobs")
    }
}

fn them(n: usize) -> &'static str {
    if n == 1 { "it" } else { "them" }
}

/// The first [`NAMED`] blobs with their sizes, and how many more.
fn named(blobs: &[(&str, u64)]) -> String {
    let mut text: Vec<String> = blobs
        .iter()
        .take(NAMED)
        .map(|(hex, size)| format!("sha256:{hex} of {size} bytes"))
        .collect();
    if blobs.len() > NAMED {
        text.push(format!("{} more", blobs.len() - NAMED));
    }
    text.join(", ")
}
