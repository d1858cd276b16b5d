//! Runs a push's [`Writes`] with at most `concurrency` requests at once: every blob is ready
//! from the start, and a manifest or version tag starts the moment the last write it waits for
//! is done, ahead of the blobs still waiting (it is small, and it may be what an index waits
//! for). A blob that fails is recorded, not fatal: what waits for it is never written, and the
//! other blobs still go. A manifest or tag the registry refuses ends the push.

use std::collections::{HashMap, HashSet, VecDeque};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::blobs::{self, Copies, Failures};
use super::error::PushError;
use super::inventory::Inventory;
use super::options::PushOptions;
use super::plan::Plan;
use super::receipt::PushSummary;
use super::tags;
use super::writes::{Write, Writes};
use crate::digest::Digest;
use crate::referrer_tags::subject_of;
use crate::registry::Transfer;
use crate::report::Reporter;

/// What the writes left for later phases.
#[derive(Debug, Default)]
pub(super) struct Sent {
    /// The blobs that could not be sent.
    pub failures: Failures,
    /// Version tags whose PUT the registry answered without naming the digest it stored
    /// (indexes into the plan's tags): they must be read back.
    pub unconfirmed: Vec<usize>,
    /// Manifests never written, as (repository index, digest), because something they wait
    /// for was not: a blob that failed, or a child or subject that waits for one.
    pub unwritten: HashSet<(usize, Digest)>,
    /// Version tags never written (indexes into the plan's tags), for the same reason.
    pub unreached: HashSet<usize>,
}

impl Sent {
    /// Marks as skipped every tag of `plan` that could not be complete at the target: a version
    /// tag never written, and any tag whose graph lacks a blob that failed, holds a manifest
    /// never written, or whose root refers to one as its subject. Tags come subjects first, so
    /// a tag referring to the root of a tag skipped here is skipped too (an SBOM's signature
    /// when the image it describes could not be sent).
    pub fn skip_incomplete(&self, plan: &mut Plan<'_>, inventory: &Inventory) {
        if self.unwritten.is_empty() && self.failures.blobs.is_empty() {
            // Everything was written: nothing to look through, whatever the number of tags.
            return;
        }
        let mut missing: HashSet<(usize, &Digest)> =
            self.unwritten.iter().map(|(r, d)| (*r, d)).collect();
        for k in 0..plan.to_write.len() {
            let i = plan.to_write[k];
            let (r, tag) = plan.tags[i];
            let root = inventory.repos[r].root_of(tag);
            // What it refers to: the subject its root names and the one its name gives
            // (`sha256-<hex>.sig`). A root that cannot be read names nothing (checked when the
            // bundle was read).
            let named = root.references().ok().and_then(|refs| refs.subject);
            let subjects = [named.map(|s| s.digest), subject_of(&tag.name)];
            let refers_to_missing = tag
                .manifests
                .iter()
                .chain(subjects.iter().flatten())
                .any(|d| missing.contains(&(r, d)));
            if self.unreached.contains(&i)
                || self.failures.any_of(inventory.blobs_needed_by(&tag.digest))
                || refers_to_missing
            {
                plan.skip(i);
                missing.insert((r, &tag.digest));
            }
        }
    }
}

/// How one write ended.
enum Done {
    /// The blob (index into the plan's needed blobs), placed or not.
    Blob(usize, Result<Copies, PushError>),
    Manifest,
    /// The tag (index into the plan's tags), and whether its PUT's answer named the digest.
    Tag(usize, bool),
}

/// Sends every blob the plan needs and, unless a dry run, writes its manifests and version
/// tags, counting in `summary`. `located` says where the target has the blobs a differential
/// bundle left out.
pub(super) async fn run(
    transfer: &Transfer,
    inventory: &Inventory,
    plan: &Plan<'_>,
    located: &HashMap<Digest, String>,
    options: &PushOptions,
    reporter: &dyn Reporter,
    summary: &mut PushSummary,
) -> Result<Sent, PushError> {
    let writes = Writes::of(inventory, plan, options.dry_run);
    let needed = &plan.needs.blobs;
    let bytes: u64 = needed
        .iter()
        .filter(|(b, _)| b.source.is_some())
        .map(|(b, _)| b.size)
        .sum();
    reporter.begin(
        &format!("pushing to {}", options.target),
        needed.len() as u64,
        bytes,
    );
    let mut waits = writes.waits.clone();
    let (mut small, mut big): (VecDeque<usize>, VecDeque<usize>) = (0..writes.writes.len())
        .filter(|&id| waits[id] == 0)
        .partition(|&id| !matches!(writes.writes[id], Write::Blob(_)));
    let list = &writes.writes;
    let write = |id: usize| async move {
        let done = match list[id] {
            Write::Blob(k) => {
                let (blob, repos) = &needed[k];
                let found_at = located.get(&blob.digest).map(String::as_str);
                Ok(Done::Blob(
                    k,
                    blobs::push_blob(transfer, inventory, blob, repos, found_at).await,
                ))
            }
            Write::Manifest(r, manifest) => {
                let repository = &inventory.repos[r].repository;
                transfer
                    .client()
                    .put_manifest(repository, &manifest.digest.to_string(), manifest)
                    .await
                    .map(|_| Done::Manifest)
                    .map_err(|source| PushError::in_repository(repository, source))
            }
            Write::Tag(i) => tags::write_tag(transfer.client(), inventory, plan, i)
                .await
                .map(|confirmed| Done::Tag(i, confirmed)),
        };
        (id, done)
    };
    let mut sent = Sent::default();
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < options.concurrency.max(1) {
            let Some(id) = small.pop_front().or_else(|| big.pop_front()) else {
                break;
            };
            running.push(write(id));
        }
        let Some((id, done)) = running.next().await else {
            break;
        };
        match done? {
            Done::Blob(k, Err(error)) => {
                sent.failures.blobs.insert(needed[k].0.digest.clone());
                sent.failures.first.get_or_insert(error);
                // What waits for it stays waiting.
                continue;
            }
            Done::Blob(k, Ok(copies)) => {
                let outcome = copies.count(needed[k].0.size, summary);
                reporter.item(&needed[k].0.digest.short(), needed[k].0.size, outcome);
            }
            Done::Manifest => summary.manifests += 1,
            Done::Tag(i, confirmed) => {
                if !confirmed {
                    sent.unconfirmed.push(i);
                }
            }
        }
        for &next in &writes.dependents[id] {
            waits[next] -= 1;
            if waits[next] == 0 {
                small.push_back(next);
            }
        }
    }
    // A write still waiting never started: something it waits for was not written.
    for (write, _) in list.iter().zip(&waits).filter(|(_, w)| **w > 0) {
        match *write {
            Write::Blob(_) => {}
            Write::Manifest(r, manifest) => {
                sent.unwritten.insert((r, manifest.digest.clone()));
            }
            Write::Tag(i) => {
                let (r, tag) = plan.tags[i];
                sent.unwritten.insert((r, tag.digest.clone()));
                sent.unreached.insert(i);
            }
        }
    }
    summary.patch_size = transfer.patch_size();
    summary.body_refused = transfer.body_refused();
    reporter.finish(&format!("blobs: {}", summary.blob_counts(options.dry_run)));
    Ok(sent)
}
