//! Runs a push's [`Writes`] with at most `concurrency` requests at once: every blob is ready
//! from the start, and a manifest or version tag starts the moment the last write it waits for
//! is done, ahead of the blobs still waiting (it is small, and it may be what an index waits
//! for). A blob that fails is recorded, not fatal: what waits for it is never written, and the
//! other blobs still go. A manifest or tag the registry refuses ends the push.

use std::collections::{HashMap, VecDeque};

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
    summary.patch_size = transfer.patch_size();
    summary.body_refused = transfer.body_refused();
    reporter.finish(&format!("blobs: {}", summary.blob_counts(options.dry_run)));
    Ok(sent)
}
