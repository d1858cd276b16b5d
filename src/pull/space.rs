//! Free space where a pull writes, against what it needs there: the pre-flight, before the
//! first blob.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::work::{Progress, State};
use crate::bundle::ArchivePlan;
use crate::bundle::publish::temp_name;

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

impl SpaceCheck {
    /// True when the space is short.
    pub fn is_short(&self) -> bool {
        self.free < self.needed
    }
}

/// The file system holding `dir` (or its nearest existing parent): (that directory, bytes
/// free, device).
fn measure(dir: &Path) -> Option<(PathBuf, u64, u64)> {
    let existing = dir.ancestors().find(|d| d.exists())?;
    let stats = rustix::fs::statvfs(existing).ok()?;
    let device = std::fs::metadata(existing).ok()?.dev();
    Some((
        existing.to_path_buf(),
        stats.f_bavail.saturating_mul(stats.f_frsize),
        device,
    ))
}

/// The checks for a pull that builds `build` more bytes of archive files in `work_dir` and
/// moves `bundle` bytes of finished files into `bundle_dir`: one check when both are on one
/// file system (a rename moves nothing), two otherwise. Empty when nothing can be measured.
pub fn space_checks(
    bundle_dir: &Path,
    work_dir: &Path,
    build: u64,
    bundle: u64,
) -> Vec<SpaceCheck> {
    let (Some(work), Some(target)) = (measure(work_dir), measure(bundle_dir)) else {
        return Vec::new();
    };
    let mut checks = vec![SpaceCheck {
        dir: work.0,
        free: work.1,
        needed: build,
    }];
    if work.2 != target.2 {
        checks.push(SpaceCheck {
            dir: target.0,
            free: target.1,
            needed: bundle,
        });
    }
    checks
}

/// What is still to be written of `archives`, where it is written, against the free space:
/// the checks, as an error when one is short. `kept` is the progress of a continued run (its
/// sealed files are not written again, its files in progress already hold some bytes);
/// `new_state` is the state file this run writes.
pub fn preflight(
    bundle_dir: &Path,
    work_dir: &Path,
    archives: &[ArchivePlan],
    kept: Option<&Progress>,
    new_state: Option<&State>,
) -> Result<(), Vec<SpaceCheck>> {
    let unsealed: Vec<(&str, u64)> = archives
        .iter()
        .flat_map(|p| &p.files)
        .filter(|f| !kept.is_some_and(|p| p.sealed.contains_key(&f.name)))
        .map(|f| (f.name.as_str(), f.size))
        .collect();
    let remaining: u64 = unsealed.iter().map(|(_, size)| size).sum();
    let in_place: u64 = match kept {
        Some(_) => unsealed
            .iter()
            .map(|(name, _)| allocated(&temp_name(&work_dir.join(name))))
            .sum(),
        None => 0,
    };
    let entries: u64 = archives.iter().map(|p| p.entries.len() as u64).sum();
    let state_size = new_state.map_or(0, State::estimated_size);
    let journal_room = (64 << 10) + 160 * entries + state_size;
    let checks = space_checks(
        bundle_dir,
        work_dir,
        (remaining + journal_room).saturating_sub(in_place),
        remaining,
    );
    if checks.iter().any(SpaceCheck::is_short) {
        return Err(checks);
    }
    Ok(())
}

/// Bytes already allocated to a file on disk (a sparse archive file being filled).
fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.blocks() * 512)
}
