//! `ferry pull --dry-run`: the plan, the exact size of every archive as the pull would write
//! it, and whether the disks have room. Nothing is written.

use serde::Serialize;

use super::error::PullError;
use super::layout::archive_plans;
use super::options::PullOptions;
use super::plan::resolve;
use super::space::{SpaceCheck, space_checks};
use crate::bundle::metadata::{ImageRecord, sort_images};
use crate::report::Reporter;
use crate::source::Plan;

/// One archive the bundle would have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchiveEstimate {
    /// Its name.
    pub name: String,
    /// Its exact size, tar headers and generated `index.json` files included.
    pub bytes: u64,
    /// Chunk files it would have with the chunk size asked for; 0 without chunking.
    pub chunks: u64,
    /// Tags it would hold.
    #[serde(skip)]
    pub tags: usize,
}

/// The plan and what follows from it.
#[derive(Debug, Clone)]
pub struct DryRun {
    /// What would be taken.
    pub plan: Plan,
    /// Each archive.
    pub archives: Vec<ArchiveEstimate>,
    /// Disk space, where it can be measured.
    pub space: Vec<SpaceCheck>,
    /// True for a differential bundle (`--since-bundle`).
    pub differential: bool,
}

/// `ferry pull --dry-run --json`, as DESIGN.md §1 fixes it.
#[derive(Debug, Serialize)]
pub struct DryRunJson {
    /// Every tag, as `ferry ls --json` prints them.
    pub images: Vec<ImageRecord>,
    /// Unique bytes to download.
    pub total_bytes: u64,
    /// Each archive.
    pub archives: Vec<ArchiveEstimate>,
    /// With `--since-bundle`: bytes of the blobs left out because the earlier bundle has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_out_bytes: Option<u64>,
}

/// Every tag of a plan as `ferry ls` lists it.
pub fn image_records(plan: &Plan) -> Vec<ImageRecord> {
    let mut images: Vec<ImageRecord> = plan
        .images
        .iter()
        .map(|i| ImageRecord {
            path: i.path.clone(),
            tag: i.tag.clone(),
            digest: i.digest.clone(),
            media_type: i.media_type.clone(),
            size: i.size(),
            archive: Some(i.archive.clone()),
            source: Some(i.source.clone()),
            mirror: i.mirror.clone(),
            source_digest: i.source_digest.clone(),
        })
        .collect();
    sort_images(&mut images);
    images
}

impl DryRun {
    /// The JSON form.
    pub fn json(&self) -> DryRunJson {
        DryRunJson {
            images: image_records(&self.plan),
            total_bytes: self.plan.total_bytes(),
            archives: self.archives.clone(),
            left_out_bytes: self.differential.then(|| self.plan.left_out_bytes()),
        }
    }

    /// The bundle's size.
    pub fn bundle_bytes(&self) -> u64 {
        self.archives.iter().map(|a| a.bytes).sum()
    }
}

/// Resolves the request and lays the bundle out, without downloading any blob beyond the small
/// metadata files the resolver reads.
pub async fn dry_run(options: &PullOptions, reporter: &dyn Reporter) -> Result<DryRun, PullError> {
    let plan = resolve(options, reporter).await?;
    for warning in &plan.warnings {
        reporter.warn(warning);
    }
    let archives: Vec<ArchiveEstimate> = archive_plans(&plan, options.chunk_size)?
        .into_iter()
        .map(|archive| ArchiveEstimate {
            tags: plan
                .images
                .iter()
                .filter(|i| i.archive == archive.name)
                .count(),
            bytes: archive.size,
            chunks: if options.chunk_size == 0 {
                0
            } else {
                archive.files.len() as u64
            },
            name: archive.name,
        })
        .collect();
    let bundle: u64 = archives.iter().map(|a| a.bytes).sum();
    let space = space_checks(&options.dir, &options.work_place().path(), bundle, bundle);
    Ok(DryRun {
        plan,
        archives,
        space,
        differential: options.since_bundle.is_some(),
    })
}
