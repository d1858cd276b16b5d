//! Replacing an earlier bundle's archives in a directory: its `bundle.json` and sum lists go
//! before the first new file appears (old sums must never describe new files), and once the
//! new archives are sealed, the files of theirs that the new cut no longer has go too. Every
//! other file stays.

use std::collections::HashSet;
use std::path::Path;

use super::metadata::{ArchiveRecord, BUNDLE_FILE, BUNDLE_SIGNATURE, GOSTSUMS, SHA256SUMS};
use super::names::{ArchiveFileName, GOSTSUM_SUFFIX, gostsum_name, parse_archive_file};
use super::publish::{TEMP_SUFFIX, remove_if_present};
use super::{BundleError, io_error};

/// Removes `bundle.json` and the sum lists from `dir`, before any new archive file is there.
pub fn remove_sums(dir: &Path) -> Result<(), BundleError> {
    for stale in [BUNDLE_FILE, BUNDLE_SIGNATURE, SHA256SUMS, GOSTSUMS] {
        remove_if_present(&dir.join(stale))?;
    }
    Ok(())
}

/// Removes from `dir` the files of the archives in `records` that are not theirs now (the
/// chunks of an earlier, differently cut bundle), each with its `.gostsum`.
pub fn remove_stale(dir: &Path, records: &[ArchiveRecord]) -> Result<(), BundleError> {
    let fresh: HashSet<&str> = records
        .iter()
        .flat_map(|r| &r.files)
        .map(|f| f.name.as_str())
        .collect();
    for record in records {
        for old in existing_files(dir, &record.name)? {
            if !fresh.contains(old.as_str()) {
                remove_if_present(&dir.join(&old))?;
                remove_if_present(&dir.join(gostsum_name(&old)))?;
            }
        }
    }
    Ok(())
}

/// The archive files (whole or chunks) of `name` already in `dir`, sorted. Leftover temporary
/// files of a crashed run are removed on the way.
pub fn existing_files(dir: &Path, name: &str) -> Result<Vec<String>, BundleError> {
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("cannot list", dir)(e)),
    };
    let mut found = Vec::new();
    for item in listing {
        let item = item.map_err(io_error("cannot list", dir))?;
        let file = item.file_name().to_string_lossy().into_owned();
        // Only the exact names ferry writes: a user's `platform.tar notes.ferry-tmp` stays.
        let leftover = file.strip_suffix(TEMP_SUFFIX).is_some_and(|stem| {
            let stem = stem.strip_suffix(GOSTSUM_SUFFIX).unwrap_or(stem);
            is_file_of(stem, name)
        });
        if leftover {
            remove_if_present(&item.path())?;
        } else if is_file_of(&file, name) {
            found.push(file);
        }
    }
    found.sort();
    Ok(found)
}

/// True when `file` is archive `name` whole or one of its chunks.
fn is_file_of(file: &str, name: &str) -> bool {
    match parse_archive_file(file) {
        Some(ArchiveFileName::Whole(archive)) | Some(ArchiveFileName::Chunk(archive, _)) => {
            archive == name
        }
        None => false,
    }
}
