//! The bundle directory a pull writes into: before anything is created it must hold nothing
//! but the work directory and what an unfinished run of this pull published (unless
//! `--force`); a run creates it and locks its work directory; a run that fails before anything
//! worth resuming was written leaves no directories behind.

use std::collections::{BTreeSet, HashSet};

use super::error::PullError;
use super::options::PullOptions;
use super::work::{WorkDir, WorkError, remove_if_empty, sealed_names};
use crate::bundle::names::gostsum_name;
use crate::bundle::names::{ArchiveFileName, parse_archive_file};
use crate::bundle::publish::TEMP_SUFFIX;
use crate::bundle::{ArchivePlan, io_error};

/// The bundle directory must hold nothing but the work directory and what an unfinished run
/// of this pull published, unless `--force`. Checked before anything is created.
pub fn check(options: &PullOptions) -> Result<(), PullError> {
    let dir = &options.dir;
    if let Some(work) = options.bundle_in_work_dir() {
        return Err(PullError::Work(WorkError::Unsafe {
            path: work,
            reason: "the bundle directory is the work directory or inside it",
        }));
    }
    if options.force || !dir.exists() {
        return Ok(());
    }
    let tmp_name = options
        .tmp_dir
        .strip_prefix(dir)
        .ok()
        .and_then(|rest| rest.components().next())
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    // A run stopped while publishing a file may leave its temporary copies beside it.
    let suffix = TEMP_SUFFIX;
    let ours: HashSet<String> = sealed_names(&options.work_place())
        .into_iter()
        .flat_map(|name| {
            let sum = gostsum_name(&name);
            [
                format!("{name}{suffix}"),
                format!("{sum}{suffix}"),
                sum,
                name,
            ]
        })
        .collect();
    let listing = std::fs::read_dir(dir).map_err(io_error("cannot list", dir))?;
    let mut found = BTreeSet::new();
    for item in listing {
        let item = item.map_err(io_error("cannot list", dir))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if Some(&name) != tmp_name.as_ref() && !ours.contains(&name) {
            found.insert(name);
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    Err(PullError::NotEmpty {
        dir: dir.clone(),
        found: found.into_iter().take(5).collect(),
    })
}

/// Creates the bundle directory and locks the pull's work directory.
pub fn lock_work_dir(options: &PullOptions) -> Result<WorkDir, PullError> {
    std::fs::create_dir_all(&options.dir)
        .map_err(io_error("cannot create the bundle directory", &options.dir))?;
    Ok(WorkDir::lock(&options.work_place())?)
}

/// After a failed run: removes the work directory's empty directories (a state file or any
/// archive file keeps them), and the bundle directory when the run made it and it is empty.
pub fn tidy_after_failure(options: &PullOptions, existed: bool) {
    remove_if_empty(&options.work_place());
    if !existed {
        let _ = std::fs::remove_dir(&options.dir);
    }
}

/// With `--force`: archives of another bundle beside this one would make it fail verify
/// (`bundle.json` does not list them). They are the user's, so they are named, not removed.
pub fn refuse_foreign_archives(
    options: &PullOptions,
    archives: &[ArchivePlan],
) -> Result<(), PullError> {
    let ours: HashSet<&str> = archives.iter().map(|p| p.name.as_str()).collect();
    let dir = &options.dir;
    let listing = std::fs::read_dir(dir).map_err(io_error("cannot list", dir))?;
    let mut names = Vec::new();
    for item in listing {
        let item = item.map_err(io_error("cannot list", dir))?;
        let name = item.file_name().to_string_lossy().into_owned();
        let archive = match parse_archive_file(&name) {
            Some(ArchiveFileName::Whole(archive) | ArchiveFileName::Chunk(archive, _)) => archive,
            None => continue,
        };
        if !ours.contains(archive.as_str()) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    Err(PullError::ForeignArchives {
        dir: dir.clone(),
        names,
    })
}
