//! `ferry pull`: plan (resolve what to take) → fetch → pack → seal. This version runs the plan
//! stage (`--dry-run`): it prints what would be taken, what it weighs, how the bundle would be
//! cut, and whether the disks have room.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bundle::metadata::{ImageRecord, sort_images};
use crate::bundle::plan::tar_size;
use crate::registry::RegistryClient;
use crate::report::Reporter;
use crate::settings::PullSettings;
use crate::source::{Plan, SourceError, join, resolve};

/// One archive the bundle would have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchiveEstimate {
    /// Its name.
    pub name: String,
    /// Its estimated size (tar headers and `index.json` files included).
    pub bytes: u64,
    /// Chunk files it would have with the chunk size asked for; 0 without chunking.
    pub chunks: u64,
    /// Tags it would hold.
    #[serde(skip)]
    pub tags: usize,
}

/// Free space against what a directory needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceCheck {
    /// The directory (or its nearest existing parent).
    pub dir: PathBuf,
    /// Bytes free for an unprivileged user.
    pub free: u64,
    /// Bytes the pull needs there.
    pub needed: u64,
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
}

impl DryRun {
    /// The JSON form.
    pub fn json(&self) -> DryRunJson {
        let mut images: Vec<ImageRecord> = self
            .plan
            .images
            .iter()
            .map(|i| ImageRecord {
                path: i.path.clone(),
                tag: i.tag.clone(),
                digest: i.digest.clone(),
                media_type: i.media_type.clone(),
                size: i.size(),
            })
            .collect();
        sort_images(&mut images);
        DryRunJson {
            images,
            total_bytes: self.plan.total_bytes(),
            archives: self.archives.clone(),
        }
    }

    /// Estimated bundle size.
    pub fn bundle_bytes(&self) -> u64 {
        self.archives.iter().map(|a| a.bytes).sum()
    }
}

/// Resolves the request and sizes the bundle, without downloading any blob beyond the small
/// metadata files the resolver reads.
pub async fn dry_run(
    settings: &PullSettings,
    reporter: &dyn Reporter,
) -> Result<DryRun, SourceError> {
    let client = RegistryClient::new(
        &settings.source.registry,
        &settings.source.path,
        settings.client.clone(),
    )?;
    let plan = resolve(
        &client,
        &settings.source,
        &settings.description,
        &settings.request,
        settings.concurrency,
        reporter,
    )
    .await?;
    for warning in &plan.warnings {
        reporter.warn(warning);
    }
    let archives = estimate_archives(&plan, settings.chunk_size);
    let bundle: u64 = archives.iter().map(|a| a.bytes).sum();
    let space = space_checks(&settings.dir, &settings.tmp_dir, bundle, plan.total_bytes());
    Ok(DryRun {
        plan,
        archives,
        space,
    })
}

/// Sizes every archive as the packer will write it: per layout `oci-layout`, `index.json`
/// and each blob once, in tar framing.
pub fn estimate_archives(plan: &Plan, chunk_size: u64) -> Vec<ArchiveEstimate> {
    plan.archives()
        .into_iter()
        .map(|name| {
            let layouts = plan.layouts(name);
            let mut entries: Vec<(usize, u64)> = Vec::new();
            let mut tags = 0;
            for (path, images) in &layouts {
                tags += images.len();
                entries.push((join(path, "oci-layout").len(), 30));
                // An index.json entry: digest, size, media type and the tag twice, pretty-printed.
                let index: u64 = 60
                    + images
                        .iter()
                        .map(|i| 260 + 2 * i.tag.len() as u64 + i.media_type.len() as u64)
                        .sum::<u64>();
                entries.push((join(path, "index.json").len(), index));
                let mut blobs = std::collections::BTreeMap::new();
                for image in images {
                    blobs.extend(image.parts.iter());
                }
                for (digest, size) in blobs {
                    entries.push((
                        join(path, &format!("blobs/sha256/{}", digest.hex())).len(),
                        *size,
                    ));
                }
            }
            let bytes = tar_size(entries);
            ArchiveEstimate {
                name: name.to_string(),
                bytes,
                chunks: if chunk_size == 0 {
                    0
                } else {
                    bytes.div_ceil(chunk_size)
                },
                tags,
            }
        })
        .collect()
}

/// Free space where the bundle and the work store go. On one file system the pull needs about
/// the bundle plus a tenth for what is in flight; on two, each its own part.
fn space_checks(bundle_dir: &Path, tmp_dir: &Path, bundle: u64, download: u64) -> Vec<SpaceCheck> {
    let measure = |dir: &Path| -> Option<(PathBuf, u64, u64)> {
        let existing = dir.ancestors().find(|d| d.exists())?;
        let stats = rustix::fs::statvfs(existing).ok()?;
        let device = std::fs::metadata(existing).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.dev()
        })?;
        Some((
            existing.to_path_buf(),
            stats.f_bavail.saturating_mul(stats.f_frsize),
            device,
        ))
    };
    let (Some(bundle_fs), tmp_fs) = (measure(bundle_dir), measure(tmp_dir)) else {
        return Vec::new();
    };
    match tmp_fs {
        Some(tmp_fs) if tmp_fs.2 != bundle_fs.2 => vec![
            SpaceCheck {
                dir: bundle_fs.0,
                free: bundle_fs.1,
                needed: bundle,
            },
            SpaceCheck {
                dir: tmp_fs.0,
                free: tmp_fs.1,
                needed: download,
            },
        ],
        _ => vec![SpaceCheck {
            dir: bundle_fs.0,
            free: bundle_fs.1,
            needed: bundle + bundle / 10,
        }],
    }
}
