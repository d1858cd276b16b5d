//! The work directory of a pull: a lock, the state file (the request, when it was made, and
//! the resolved plan with every manifest), the journal of what is finished, and the archive
//! files in progress. It is what lets a rerun continue an interrupted pull instead of starting
//! over. It is ferry's own: confined below the user's directory, and only ferry's names in it
//! are ever removed.

mod error;
mod journal;
mod own_files;
mod place;
mod state;

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub use error::WorkError;
pub use journal::{Journal, Progress};
pub use place::WorkPlace;
pub use state::{RESUME_WINDOW, State};

use crate::bundle::BundleError;
use crate::bundle::publish::{TEMP_SUFFIX, move_file};
use crate::file_error::FileError;
use crate::store::{StoreError, write_atomic_with};
use error::io;
use journal::{JOURNAL_FILE, is_archive_file, read_progress};
use own_files::{clear_own_files, own_files, remove_own_file};
use place::{NOFOLLOW, check_own_dir};
use state::{STATE_FILE, read_state};

/// The work directory's own name, under the temporary directory.
pub const WORK_DIR_NAME: &str = "ferry-pull";
const LOCK_FILE: &str = "lock";
/// Where the files of an earlier layout wait while their blobs are copied into a new one.
const PREVIOUS_DIR: &str = "previous";

/// Names of the files an unfinished pull in `place` published (read without the lock: only
/// to tell its files from foreign ones). Empty when there is no usable work directory.
/// Only names of the state's own plan count: a journal cannot claim a file its plan lacks.
pub fn sealed_names(place: &WorkPlace) -> Vec<String> {
    let Some(dir) = place.existing() else {
        return Vec::new();
    };
    let Some(Ok(state)) = read_state(&dir) else {
        return Vec::new();
    };
    let planned = state.into_file_names();
    read_progress(&dir.join(JOURNAL_FILE))
        .sealed
        .into_keys()
        .filter(|name| planned.contains(name))
        .collect()
}

/// A locked work directory.
pub struct WorkDir {
    path: PathBuf,
    _lock: File,
}

impl WorkDir {
    /// Creates and locks the work directory of `place`; a second pull using it at the same
    /// time is refused, and so is a link or a foreign directory where it goes.
    pub fn lock(place: &WorkPlace) -> Result<WorkDir, WorkError> {
        let path = place.make()?;
        let lock_path = path.join(LOCK_FILE);
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(NOFOLLOW)
            .open(&lock_path)
            .map_err(io("cannot create", &lock_path))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .map_err(|_| WorkError::Busy(path.clone()))?;
        Ok(WorkDir { path, _lock: lock })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the files of an earlier layout wait during a re-lay.
    pub fn previous(&self) -> PathBuf {
        self.path.join(PREVIOUS_DIR)
    }

    /// The state of an earlier run, if there is one: `Err` says why it cannot be used.
    pub fn state(&self) -> Option<Result<State<'static>, String>> {
        read_state(&self.path)
    }

    /// What the journal says is finished.
    pub fn progress(&self) -> Progress {
        read_progress(&self.path.join(JOURNAL_FILE))
    }

    /// The state and progress of the earlier layout kept in `previous/`, if any.
    pub fn previous_run(&self) -> Option<(State<'static>, Progress)> {
        let dir = self.previous();
        if check_own_dir(&dir).ok()? {
            return None;
        }
        let state = read_state(&dir)?.ok()?;
        Some((state, read_progress(&dir.join(JOURNAL_FILE))))
    }

    /// Removes what ferry keeps here, but the lock: the start of a new pull. Only names ferry
    /// writes go (the state, the journal, archive files in progress, `previous/` with the
    /// same); anything else is left where it is.
    pub fn clear(&self) -> Result<(), WorkError> {
        clear_own_files(&self.path)?;
        let previous = self.previous();
        if check_own_dir(&previous)? {
            return Ok(());
        }
        clear_own_files(&previous)?;
        remove_own_file(&previous.join(LOCK_FILE))?;
        match std::fs::remove_dir(&previous) {
            // Something else is in there: not ferry's to remove.
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => Ok(()),
            other => other.map_err(io("cannot remove", &previous)),
        }
    }

    /// Moves the current run's state, journal and temporary files into `previous/` (replacing
    /// an older one there), so that a new layout can copy its blobs from them. Files listed in
    /// `sealed_in_bundle` are moved there from the bundle directory.
    pub fn keep_as_previous(
        &self,
        bundle_dir: &Path,
        sealed_in_bundle: &[String],
    ) -> Result<(), WorkError> {
        let previous = self.previous();
        if !check_own_dir(&previous)? {
            clear_own_files(&previous)?;
        } else {
            std::fs::create_dir(&previous).map_err(io("cannot create", &previous))?;
        }
        for name in own_files(&self.path)? {
            let target = previous.join(name.trim_end_matches(TEMP_SUFFIX));
            std::fs::rename(self.path.join(&name), &target).map_err(io("cannot move", &target))?;
        }
        for name in sealed_in_bundle.iter().filter(|n| is_archive_file(n)) {
            let from = bundle_dir.join(name);
            if from.exists() {
                move_file(&from, &previous.join(name)).map_err(|e| match e {
                    BundleError::Io(file) => WorkError::Io(file),
                    other => {
                        WorkError::Io(FileError::other("cannot move", &from, other.to_string()))
                    }
                })?;
            }
        }
        Ok(())
    }

    /// Writes the state file of a new run and starts its journal empty.
    pub fn begin(&self, state: &State) -> Result<Journal, WorkError> {
        let journal_path = self.path.join(JOURNAL_FILE);
        let _ = std::fs::remove_file(&journal_path);
        let state_path = self.path.join(STATE_FILE);
        // Streamed: the state of thousands of images is tens of MiB of JSON.
        let write = |file: &mut dyn std::io::Write| {
            serde_json::to_writer(file, state).map_err(std::io::Error::from)
        };
        write_atomic_with(&state_path, write).map_err(|e| match e {
            StoreError::Io(file) => WorkError::Io(file),
            other => WorkError::Io(FileError::other(
                "cannot write",
                &state_path,
                other.to_string(),
            )),
        })?;
        self.journal()
    }

    /// The journal, opened for appending.
    pub fn journal(&self) -> Result<Journal, WorkError> {
        let path = self.path.join(JOURNAL_FILE);
        Journal::open(&path).map_err(io("cannot open", &path))
    }

    /// Removes the work directory: the pull is sealed. Only ferry's own files go; a directory
    /// that still holds something else stays.
    pub fn remove(self) -> Result<(), WorkError> {
        self.clear()?;
        let path = self.path.clone();
        drop(self);
        remove_own_file(&path.join(LOCK_FILE))?;
        match std::fs::remove_dir(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => Ok(()),
            other => other.map_err(io("cannot remove", &path)),
        }
    }
}

/// Removes what a failed first run left of the work directory of `place`: its lock and the
/// directories, when nothing else is in them. Nothing is followed or removed when the place is
/// not ferry's own.
pub fn remove_if_empty(place: &WorkPlace) {
    let Some(dir) = place.existing() else {
        return;
    };
    let _ = std::fs::remove_file(dir.join(LOCK_FILE));
    let mut path = dir;
    for _ in place.below.components() {
        if std::fs::remove_dir(&path).is_err() {
            return;
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::io::Write;

    use super::*;
    use crate::bundle::FileRecord;
    use crate::digest::Digest;

    #[test]
    fn the_journal_is_read_back_and_a_torn_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let place = WorkPlace {
            anchor: dir.path().to_path_buf(),
            below: "ferry-pull".into(),
        };
        let work = WorkDir::lock(&place).unwrap();
        assert!(matches!(WorkDir::lock(&place), Err(WorkError::Busy(_))));
        let journal = work.journal().unwrap();
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        journal.at(&a, 100).unwrap();
        journal.at(&b, 7).unwrap();
        journal.done(&a).unwrap();
        journal
            .sealed(&FileRecord {
                name: "p.tar.0000.chunk".into(),
                size: 9,
                sha256: "ab".into(),
                gost: None,
            })
            .unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(work.path().join(JOURNAL_FILE))
            .unwrap()
            .write_all(b"done sha256:12")
            .unwrap();
        let progress = work.progress();
        assert_eq!(progress.done, HashSet::from([a]));
        assert_eq!(progress.at, HashMap::from([(b, 7)]));
        assert_eq!(progress.sealed["p.tar.0000.chunk"].size, 9);
        assert_eq!(progress.sealed["p.tar.0000.chunk"].gost, None);
    }
}
