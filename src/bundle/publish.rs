//! Files under temporary names and their move into the bundle directory: a file appears there
//! whole, with its `.gostsum`, or not at all.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::metadata::FileRecord;
use super::names::gostsum_name;
use super::{BundleError, io_error};

/// Suffix of files still being written.
pub const TEMP_SUFFIX: &str = ".ferry-tmp";

/// Told about every file just before it is renamed into the bundle directory, so a journal
/// can record it; an error stops the file from being published.
pub type SealHook = Arc<dyn Fn(&str, &FileRecord) -> std::io::Result<()> + Send + Sync>;

/// `path` with [`TEMP_SUFFIX`] appended.
pub fn temp_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(TEMP_SUFFIX);
    PathBuf::from(name)
}

/// Renames a finished file into the bundle directory with its `.gostsum` (or without, removing
/// a stale one). Across file systems the file is copied under a temporary name first.
pub(super) fn publish(
    bundle_dir: &Path,
    temp: &Path,
    record: &FileRecord,
) -> Result<(), BundleError> {
    let target = bundle_dir.join(&record.name);
    let sum_path = bundle_dir.join(gostsum_name(&record.name));
    let sum_temp = temp_name(&sum_path);
    if let Some(gost) = &record.gost {
        // In the user's directory: a link planted under this name is refused, not written
        // through.
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&sum_temp)
            .and_then(|mut f| {
                std::io::Write::write_all(&mut f, gost.as_bytes())?;
                f.sync_all()
            })
            .map_err(io_error("cannot write", &sum_temp))?;
    }
    move_file(temp, &target)?;
    match &record.gost {
        Some(_) => {
            std::fs::rename(&sum_temp, &sum_path).map_err(io_error("cannot rename", &sum_path))
        }
        None => remove_if_present(&sum_path),
    }
}

/// Renames `from` to `to`; when they are on different file systems, copies to a temporary name
/// beside `to`, syncs, renames, and removes `from`.
pub fn move_file(from: &Path, to: &Path) -> Result<(), BundleError> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()) => {
            let staged = temp_name(to);
            // Whatever is under the temporary name (a link planted there included) is removed,
            // never written through: the copy goes to a file this call creates.
            remove_if_present(&staged)?;
            let mut copy = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(&staged)
                .map_err(io_error("cannot create", &staged))?;
            File::open(from)
                .and_then(|mut original| std::io::copy(&mut original, &mut copy))
                .and_then(|_| copy.sync_all())
                .map_err(io_error("cannot copy to", &staged))?;
            std::fs::rename(&staged, to).map_err(io_error("cannot rename", to))?;
            remove_if_present(from)
        }
        Err(e) => Err(io_error("cannot rename into", to)(e)),
    }
}

/// Removes a file; one that is not there is fine.
pub fn remove_if_present(path: &Path) -> Result<(), BundleError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io_error("cannot remove", path)(e))
        }
        _ => Ok(()),
    }
}
