//! Archives open for writing: the state an [`super::writer::ArchiveWriter`], its sealers and
//! its sinks share. Each file's temporary name and handle (or its record, once sealed), which
//! entries' bytes are in place, and reads and writes at archive offsets that cross file (chunk)
//! boundaries.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::metadata::FileRecord;
use super::plan::ArchivePlan;
use super::{BundleError, io_error};
use crate::digest::Sha256Hasher;

/// Bytes read at a time (by sealers and when re-hashing).
pub(super) const READ_BUFFER: usize = 1 << 20;

/// One file of an archive while the archive is being written.
pub(super) struct Slot {
    pub(super) temp: PathBuf,
    pub(super) handle: Option<Arc<File>>,
    pub(super) record: Option<FileRecord>,
}

/// Where the writing stands, under one lock.
pub(super) struct State {
    /// Per archive and entry: are its bytes in place?
    pub(super) done: Vec<Vec<bool>>,
    /// Per archive: the first entry not done. Every byte before its data is final.
    pub(super) cursor: Vec<usize>,
    pub(super) slots: Vec<Vec<Slot>>,
    pub(super) stopping: bool,
    pub(super) error: Option<BundleError>,
}

/// The archives being written, shared by the writer, its sealers and its sinks.
pub(super) struct OpenArchives {
    pub(super) bundle_dir: PathBuf,
    pub(super) plans: Vec<ArchivePlan>,
    pub(super) gost: bool,
    pub(super) state: Mutex<State>,
    pub(super) changed: Condvar,
    pub(super) queue: Mutex<VecDeque<(usize, usize)>>,
}

impl OpenArchives {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("writer state lock")
    }

    pub(super) fn advance_all(&self) {
        let mut state = self.lock();
        for a in 0..self.plans.len() {
            Self::advance(&mut state, a);
        }
    }

    pub(super) fn advance(state: &mut State, archive: usize) {
        let done = &state.done[archive];
        let mut cursor = state.cursor[archive];
        while cursor < done.len() && done[cursor] {
            cursor += 1;
        }
        state.cursor[archive] = cursor;
    }

    /// Bytes of file `file` of `archive` that are final, counted from its start.
    pub(super) fn ready(&self, state: &State, archive: usize, file: usize) -> u64 {
        let plan = &self.plans[archive];
        let cursor = state.cursor[archive];
        let prefix = plan
            .entries
            .get(cursor)
            .map_or(plan.size, |e| e.data_offset);
        let f = &plan.files[file];
        prefix.saturating_sub(f.start).min(f.size)
    }

    fn handle(&self, archive: usize, file: usize) -> std::io::Result<Arc<File>> {
        let state = self.lock();
        state.slots[archive][file].handle.clone().ok_or_else(|| {
            std::io::Error::other(format!(
                "{} is already sealed",
                self.plans[archive].files[file].name
            ))
        })
    }

    /// Writes `bytes` at archive offset `offset`, across files. `fixed` skips sealed files
    /// (writing the known bytes of a resumed run).
    pub(super) fn write_at(
        &self,
        archive: usize,
        offset: u64,
        bytes: &[u8],
        fixed: bool,
    ) -> std::io::Result<()> {
        let plan = &self.plans[archive];
        for range in plan.ranges(offset, bytes.len() as u64) {
            let part = &bytes[range.skip as usize..(range.skip + range.len) as usize];
            let handle = match self.handle(archive, range.file) {
                Ok(handle) => handle,
                Err(_) if fixed => continue,
                Err(e) => return Err(e),
            };
            handle.write_all_at(part, range.offset)?;
        }
        Ok(())
    }

    /// Reads archive bytes `offset..offset + len` in pieces, from the temporary files or, once
    /// sealed, from the bundle directory.
    pub(super) fn read_range(
        &self,
        archive: usize,
        offset: u64,
        len: u64,
        mut each: impl FnMut(&[u8]) -> Result<(), BundleError>,
    ) -> Result<(), BundleError> {
        let plan = &self.plans[archive];
        let mut buffer = vec![0u8; READ_BUFFER.min(len as usize)];
        for range in plan.ranges(offset, len) {
            let (file, path) = match self.handle(archive, range.file) {
                Ok(handle) => (handle, self.lock().slots[archive][range.file].temp.clone()),
                Err(_) => {
                    let path = self.bundle_dir.join(&plan.files[range.file].name);
                    let file = File::open(&path).map_err(io_error("cannot read", &path))?;
                    (Arc::new(file), path)
                }
            };
            let mut at = 0;
            while at < range.len {
                let n = (range.len - at).min(buffer.len() as u64) as usize;
                file.read_exact_at(&mut buffer[..n], range.offset + at)
                    .map_err(io_error("cannot read", &path))?;
                each(&buffer[..n])?;
                at += n as u64;
            }
        }
        Ok(())
    }

    /// Re-hashes the first `len` bytes of a blob entry where they lie (resuming: what an
    /// earlier run wrote) and returns the hasher.
    pub(super) async fn rehash(
        self: &Arc<Self>,
        archive: usize,
        entry: usize,
        len: u64,
    ) -> Result<Sha256Hasher, BundleError> {
        let shared = self.clone();
        tokio::task::spawn_blocking(move || {
            let offset = shared.plans[archive].entries[entry].data_offset;
            let mut hasher = Sha256Hasher::new();
            shared.read_range(archive, offset, len, |bytes| {
                hasher.update(bytes);
                Ok(())
            })?;
            Ok(hasher)
        })
        .await
        .expect("a hashing task does not panic")
    }
}
