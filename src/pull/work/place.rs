//! Where a pull's work directory lies, and the confinement that keeps it ferry's own: every
//! directory below the user's anchor a real directory of this user, no link followed.

use std::path::{Path, PathBuf};

use super::error::{WorkError, io, unsafe_dir};

/// `O_NOFOLLOW`: a link planted where ferry keeps its own files is refused, not followed.
pub const NOFOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;

/// Where a work directory lies: `below` (ferry's own directories, e.g. `.tmp/ferry-pull`)
/// under `anchor` (a directory the user chose: the bundle directory or `--tmp-dir`). The
/// anchor may be anything the user likes, a link included; nothing below it may be a link.
#[derive(Debug, Clone)]
pub struct WorkPlace {
    /// The user's directory.
    pub anchor: PathBuf,
    /// Ferry's directories under it, relative.
    pub below: PathBuf,
}

impl WorkPlace {
    /// The work directory's path, whether or not it is there.
    pub fn path(&self) -> PathBuf {
        self.anchor.join(&self.below)
    }

    /// The work directory, when it is there and safe to use (every directory below the anchor
    /// real and this user's); `None` when it is not there or not safe.
    pub fn existing(&self) -> Option<PathBuf> {
        let mut path = self.anchor.clone();
        for part in self.below.components() {
            path.push(part);
            if check_own_dir(&path).ok()? {
                return None;
            }
        }
        Some(path)
    }

    /// Creates what is missing of the work directory, each directory below the anchor checked
    /// without following links.
    pub fn make(&self) -> Result<PathBuf, WorkError> {
        std::fs::create_dir_all(&self.anchor).map_err(io("cannot create", &self.anchor))?;
        let mut path = self.anchor.clone();
        for part in self.below.components() {
            path.push(part);
            if check_own_dir(&path)? {
                match std::fs::create_dir(&path) {
                    Ok(()) => {}
                    // Made by a concurrent pull: checked below like any other.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io("cannot create", &path)(e)),
                }
                if check_own_dir(&path)? {
                    return Err(unsafe_dir(&path, "it vanished while being created"));
                }
            }
        }
        Ok(path)
    }
}

/// Checks, without following links, that `path` is a real directory of this user: `Ok(true)`
/// when it is missing, `Ok(false)` when it is fine.
pub fn check_own_dir(path: &Path) -> Result<bool, WorkError> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(io("cannot inspect", path)(e)),
    };
    if meta.file_type().is_symlink() {
        return Err(unsafe_dir(path, "it is a symbolic link"));
    }
    if !meta.is_dir() {
        return Err(unsafe_dir(path, "it is not a directory"));
    }
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(unsafe_dir(path, "another user owns it"));
    }
    Ok(false)
}
