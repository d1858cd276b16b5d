//! Sealing the bundle once every archive file is in place: the files of an earlier bundle's
//! archives that the new ones do not have removed, the sums and `bundle.json` written last,
//! the work directory removed; and what the pull did.

use std::time::Instant;

use super::dry_run::image_records;
use super::error::PullError;
use super::layout::archive_plans;
use super::options::PullOptions;
use super::summary::PullSummary;
use super::work::WorkDir;
use super::write::Written;
use crate::bundle::metadata::Signer;
use crate::bundle::replace::remove_stale;
use crate::bundle::{BaseRecord, BlobRecord, BundleMetadata};
use crate::referrer_tags::subject_of;
use crate::source::Plan;
use crate::trust::bundle_signature;

/// Seals the bundle of `plan` from what was `written`, then removes the work directory.
/// `full_bytes` is what [`full_size`] said before the plan let go of its manifests.
pub fn seal(
    options: &PullOptions,
    plan: &Plan,
    written: Written,
    work: WorkDir,
    started: Instant,
    full_bytes: u64,
) -> Result<PullSummary, PullError> {
    remove_stale(&options.dir, &written.records)?;
    let images = image_records(plan);
    let base = options.since_bundle.as_ref().map(|b| BaseRecord {
        left_out: BlobRecord::list(&plan.left_out),
        ..b.record.clone()
    });
    let tags = images.len();
    let files = written.records.iter().map(|r| r.files.len()).sum();
    let bundle_bytes = written.records.iter().map(|r| r.size()).sum();
    // --sign-key: bundle.json.sig is written just before bundle.json, from the same bytes.
    let sign = options
        .sign_key
        .as_ref()
        .map(|key| move |bytes: &[u8]| bundle_signature(key, bytes));
    // Every image left in the plan passed the policy (the refused ones left it).
    let signature_policy = options.signature_policy.as_ref().map(|policy| {
        policy.record(
            plan.images
                .iter()
                .filter(|i| subject_of(&i.tag).is_none())
                .count(),
        )
    });
    BundleMetadata {
        base: base.clone(),
        signature_policy,
        ..BundleMetadata::new(
            options.source_name(),
            options.request_record.clone(),
            written.records,
            images,
        )
    }
    .seal_signed(&options.dir, sign.as_ref().map(|f| f as &Signer<'_>))?;
    work.remove()?;
    if options.default_tmp_dir() {
        // The default work place is ferry's own; leave nothing behind.
        let _ = std::fs::remove_dir(&options.tmp_dir);
    }
    Ok(PullSummary {
        tags,
        blobs: written.blobs,
        downloaded: written.downloaded,
        reused: written.reused,
        relaid: written.relaid,
        files,
        bundle_bytes,
        seconds: started.elapsed().as_secs_f64(),
        resumed: written.resumed,
        base,
        full_bytes,
    })
}

/// What the archives of a differential pull's `plan` would weigh with nothing left out (0
/// for a pull that is not differential). It lays the archives out, so it needs the plan's
/// manifests: it is asked before they are let go of.
pub fn full_size(options: &PullOptions, plan: &Plan) -> Result<u64, PullError> {
    if options.since_bundle.is_none() {
        return Ok(0);
    }
    let full = Plan {
        left_out: Default::default(),
        ..plan.clone()
    };
    Ok(archive_plans(&full, 0)?.iter().map(|a| a.size).sum())
}
