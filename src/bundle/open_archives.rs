//! Archives open for writing: the state an [`super::writer::ArchiveWriter`], its sealers and
//! its sinks share. Each file's temporary name and handle (or its record, once sealed), which
//! entries' bytes are in place or how far they have landed, and reads and writes at archive
//! offsets that cross file (chunk) boundaries.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::metadata::FileRecord;
use super::plan::{ArchivePlan, PlannedFile};
use super::{BundleError, io_error};
use crate::digest::Sha256Hasher;

/// Bytes read at a time (by sealers and when re-hashing).
pub(super) const READ_BUFFER: usize = 1 << 20;

/// One file of an archive while the archive is being written.
pub(super) struct Slot {
    pub(super) temp: PathBuf,
    pub(super) handle: Option<Arc<File>>,
    pub(super) record: Option<FileRecord>,
    /// The first entry whose data reaches into this file and is not done: every byte of the
    /// file before its data is final.
    pub(super) cursor: usize,
    /// The lowest offset in this file whose landed bytes were dropped (a blob written again
    /// from an earlier byte) since its sealer last looked.
    pub(super) rewound: Option<u64>,
}

impl Slot {
    /// A slot whose first entry not done is `cursor` (set right by [`OpenArchives::advance_all`]).
    pub(super) fn new(
        temp: PathBuf,
        handle: Option<Arc<File>>,
        record: Option<FileRecord>,
    ) -> Self {
        Slot {
            temp,
            handle,
            record,
            cursor: 0,
            rewound: None,
        }
    }
}

/// Where the writing stands, under one lock.
pub(super) struct State {
    /// Per archive and entry: are its bytes in place (fetched, checked, copied everywhere)?
    pub(super) done: Vec<Vec<bool>>,
    /// Per archive and entry: how many of its first bytes a sink has written. Sealers hash them
    /// before the blob is checked: a blob that fails its check stops the fill (nothing is
    /// sealed), and one written again from an earlier byte marks its files rewound.
    pub(super) landed: Vec<Vec<u64>>,
    pub(super) slots: Vec<Vec<Slot>>,
    pub(super) stopping: bool,
    pub(super) error: Option<BundleError>,
}

/// How much of one file a sealer may read, counted from the file's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ready {
    /// Bytes written: fixed bytes and landed blob bytes, without a gap.
    pub(super) landed: u64,
    /// Bytes final: every entry they belong to is done.
    pub(super) done: u64,
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

    /// Moves every file's cursor to its first entry not done.
    pub(super) fn advance_all(&self) {
        let mut state = self.lock();
        for (a, plan) in self.plans.iter().enumerate() {
            for f in 0..plan.files.len() {
                let file = &plan.files[f];
                state.slots[a][f].cursor = plan
                    .entries
                    .partition_point(|e| e.data_offset + e.size() <= file.start);
                self.advance_file(&mut state, a, f);
            }
        }
    }

    /// Moves the cursors of the files holding `entry`, which is now done.
    pub(super) fn advance(&self, state: &mut State, archive: usize, entry: usize) {
        let plan = &self.plans[archive];
        let placed = &plan.entries[entry];
        let first = plan.file_at(placed.data_offset);
        let last = plan.file_at(placed.data_offset + placed.size().max(1) - 1);
        for f in first..=last {
            self.advance_file(state, archive, f);
        }
    }

    fn advance_file(&self, state: &mut State, archive: usize, file: usize) {
        let plan = &self.plans[archive];
        let end = plan.files[file].end();
        let mut cursor = state.slots[archive][file].cursor;
        while cursor < plan.entries.len()
            && plan.entries[cursor].data_offset < end
            && state.done[archive][cursor]
        {
            cursor += 1;
        }
        state.slots[archive][file].cursor = cursor;
    }

    /// How much of file `file` of `archive` is written, and how much is final.
    pub(super) fn ready(&self, state: &State, archive: usize, file: usize) -> Ready {
        let plan = &self.plans[archive];
        let planned: &PlannedFile = &plan.files[file];
        let within = |offset: u64| offset.clamp(planned.start, planned.end()) - planned.start;
        let cursor = state.slots[archive][file].cursor;
        let done = plan
            .entries
            .get(cursor)
            .map_or(planned.size, |e| within(e.data_offset));
        let mut landed = planned.size;
        for (e, entry) in plan.entries.iter().enumerate().skip(cursor) {
            if entry.data_offset >= planned.end() {
                break;
            }
            let have = if state.done[archive][e] {
                entry.size()
            } else {
                state.landed[archive][e]
            };
            if have < entry.size() {
                landed = within(entry.data_offset + have);
                break;
            }
        }
        Ready { landed, done }
    }

    /// Records that the first `len` bytes of entry `entry` of `archive` are written. Fewer than
    /// before means the entry is being written again: the files holding the dropped bytes are
    /// marked rewound, so that a sealer that hashed them starts that file over.
    pub(super) fn land(&self, archive: usize, entry: usize, len: u64) {
        let mut state = self.lock();
        let before = std::mem::replace(&mut state.landed[archive][entry], len);
        if len < before {
            let offset = self.plans[archive].entries[entry].data_offset + len;
            for range in self.plans[archive].ranges(offset, before - len) {
                let slot = &mut state.slots[archive][range.file];
                slot.rewound = Some(slot.rewound.map_or(range.offset, |r| r.min(range.offset)));
            }
        }
        drop(state);
        if len > before {
            self.changed.notify_all();
        }
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
