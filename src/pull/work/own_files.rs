//! The names ferry writes in a work directory, and removing those only: anything else found
//! there is left where it is.

use std::path::Path;

use super::error::{WorkError, io};
use super::journal::{JOURNAL_FILE, is_archive_file};
use super::state::{STATE_FILE, STATE_TEMP_PREFIX};
use crate::bundle::publish::TEMP_SUFFIX;

/// The names in `dir` that ferry writes there, but the lock: the state (and its temporary
/// files), the journal, archive files in progress (`*.tar.ferry-tmp`) and, in `previous/`,
/// archive files without that suffix.
pub fn own_files(dir: &Path) -> Result<Vec<String>, WorkError> {
    let listing = std::fs::read_dir(dir).map_err(io("cannot list", dir))?;
    let mut names = Vec::new();
    for item in listing {
        let item = item.map_err(io("cannot list", dir))?;
        let Ok(name) = item.file_name().into_string() else {
            continue;
        };
        let archive = name.strip_suffix(TEMP_SUFFIX).unwrap_or(&name);
        if name == STATE_FILE
            || name == JOURNAL_FILE
            || name.starts_with(STATE_TEMP_PREFIX)
            || is_archive_file(archive)
        {
            names.push(name);
        }
    }
    Ok(names)
}

/// Removes [`own_files`] of `dir`.
pub fn clear_own_files(dir: &Path) -> Result<(), WorkError> {
    for name in own_files(dir)? {
        remove_own_file(&dir.join(name))?;
    }
    Ok(())
}

/// Removes one file (a link is removed, never followed); one that is not there is fine.
pub fn remove_own_file(path: &Path) -> Result<(), WorkError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("cannot remove", path)(e)),
        _ => Ok(()),
    }
}
