//! `ferry push`: the bundle checked offline before the target hears a word, then asked of the
//! target what it has; the missing blobs sent straight out of the archive files, each manifest
//! and version tag as soon as what it needs is there (children first); channels, the module
//! catalog and referrer tags after all others; every written tag read back; and a receipt. Nothing is written to disk but the receipt.

mod blobs;
mod check;
mod error;
mod inventory;
mod left_out;
mod options;
mod plan;
mod readback;
mod receipt;
mod schedule;
mod schema;
mod tags;
mod writes;

use std::sync::Arc;
use std::time::Instant;

pub use error::PushError;
pub use inventory::{BlobItem, Inventory, Phase, RepoItem, TagItem};
pub use options::{Aliases, PushOptions};
pub use receipt::{PushSummary, ReceiptEntry, TagStatus};

use crate::registry::{ProgressFn, RegistryClient, Transfer};
use crate::report::Reporter;

/// Pushes the bundle in `options.dir` to `options.target`.
pub async fn push(
    options: &PushOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<PushSummary, PushError> {
    let started = Instant::now();
    let inventory = check::read_bundle(options).await?;
    let transfer = connect(options, &reporter).await?;
    let client = transfer.client();
    let located = left_out::locate(client, &inventory, options, reporter.as_ref()).await?;
    let mut plan = plan::plan(client, &inventory, options, reporter.as_ref()).await?;
    let mut summary = PushSummary::default();
    let sent = schedule::run(
        &transfer,
        &inventory,
        &plan,
        &located,
        options,
        reporter.as_ref(),
        &mut summary,
    )
    .await?;
    // A tag whose graph lacks a blob, or refers to an image that could not be completed, is
    // not written.
    sent.skip_incomplete(&mut plan, &inventory);
    if !options.dry_run {
        let concurrency = options.concurrency;
        let later = [Phase::Aliases, Phase::Referrers];
        let mut unconfirmed = sent.unconfirmed;
        unconfirmed.extend(tags::write(client, &inventory, &plan, &later, concurrency).await?);
        readback::check(client, &inventory, &plan, &unconfirmed, concurrency).await?;
    }
    summary.tags = plan.into_entries();
    summary.seconds = started.elapsed().as_secs_f64();
    if let Some(path) = &options.receipt
        && !options.dry_run
    {
        receipt::write(path, &summary.tags)?;
    }
    sent.failures.into_result(summary)
}

/// A client for the target, checked to answer, writing through the transfer engine (asking
/// only, for a dry run); every byte sent is reported.
async fn connect(
    options: &PushOptions,
    reporter: &Arc<dyn Reporter>,
) -> Result<Transfer, PushError> {
    let target = &options.target;
    let client = RegistryClient::new(&target.registry, &target.repository, options.client.clone())?;
    client.ping().await?;
    let progress: ProgressFn = {
        let reporter = reporter.clone();
        Arc::new(move |n| reporter.bytes(n))
    };
    Ok(Transfer::new(client, options.upload_mode, progress).asking_only(options.dry_run))
}
