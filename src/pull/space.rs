//! Free space where a pull writes, against what it needs there.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

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

/// Bytes already allocated to a file on disk (a sparse archive file being filled).
pub fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.blocks() * 512)
}
