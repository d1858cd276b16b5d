//! Writes archives laid out by [`ArchivePlan`]s. Every file (a whole tar or a chunk) is created
//! under a temporary name in the work directory at its full size; headers and generated entries
//! are written at once; blob data arrives later, in any order, through [`EntrySink`]s. A pool of
//! sealers (one per core) hashes each file in order as its bytes fall into place (SHA-256 and,
//! when asked, Streebog-256), syncs it and renames it into the bundle directory as soon as it is
//! complete, so hashing overlaps the downloads and no file is ever read back afterwards.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use sha2::Digest as _;

use super::metadata::{ArchiveRecord, FileRecord};
use super::names::gostsum_name;
use super::open_archives::{OpenArchives, READ_BUFFER, Slot, State};
use super::plan::{ArchivePlan, EntryContent};
use super::{BundleError, io_error};
use crate::digest::Sha256Hasher;
use crate::store::fsync_dir;

// The sink a writer opens, and the hook it takes, are part of the writer's API.
pub use super::entry_sink::{CheckpointHook, EntrySink};

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

/// Archives being written into a bundle directory.
pub struct ArchiveWriter {
    shared: Arc<OpenArchives>,
    on_sealed: Option<SealHook>,
    sealers: Mutex<Vec<JoinHandle<()>>>,
}

/// How the writer works.
#[derive(Clone, Default)]
pub struct WriterOptions {
    /// Also compute Streebog-256 and write a `.gostsum` beside every file.
    pub gost: bool,
    /// Files sealed by an earlier run, by name: they are not written again. When one of them
    /// is still under its temporary name (the run stopped between journal and rename), it is
    /// published now.
    pub sealed: HashMap<String, FileRecord>,
    /// Called for every file before its rename.
    pub on_sealed: Option<SealHook>,
}

impl ArchiveWriter {
    /// Creates (or, resuming, reopens) the temporary files of `plans` in `work_dir` and writes
    /// what is known up front: headers, `oci-layout`, `index.json`, manifests. Blocking.
    pub fn open(
        bundle_dir: &Path,
        work_dir: &Path,
        plans: Vec<ArchivePlan>,
        options: WriterOptions,
    ) -> Result<ArchiveWriter, BundleError> {
        for dir in [bundle_dir, work_dir] {
            std::fs::create_dir_all(dir).map_err(io_error("cannot create", dir))?;
        }
        let mut slots = Vec::with_capacity(plans.len());
        for plan in &plans {
            let mut files = Vec::with_capacity(plan.files.len());
            for file in &plan.files {
                let temp = temp_name(&work_dir.join(&file.name));
                let slot = match options.sealed.get(&file.name) {
                    Some(record) => {
                        if temp.exists() {
                            publish(bundle_dir, &temp, record)?;
                        }
                        Slot {
                            temp,
                            handle: None,
                            record: Some(record.clone()),
                        }
                    }
                    None => {
                        // A link planted under a temporary name is refused, not written
                        // through.
                        let handle = std::fs::OpenOptions::new()
                            .read(true)
                            .write(true)
                            .create(true)
                            .truncate(false)
                            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                            .open(&temp)
                            .map_err(io_error("cannot create", &temp))?;
                        handle
                            .set_len(file.size)
                            .map_err(io_error("cannot size", &temp))?;
                        Slot {
                            temp,
                            handle: Some(Arc::new(handle)),
                            record: None,
                        }
                    }
                };
                files.push(slot);
            }
            slots.push(files);
        }
        let done: Vec<Vec<bool>> = plans
            .iter()
            .map(|p| {
                p.entries
                    .iter()
                    .map(|e| matches!(e.content, EntryContent::Bytes(_) | EntryContent::Written(_)))
                    .collect()
            })
            .collect();
        let mut queue: Vec<(u64, usize, usize)> = Vec::new();
        for (a, plan) in plans.iter().enumerate() {
            for (f, file) in plan.files.iter().enumerate() {
                if slots[a][f].record.is_none() {
                    queue.push((file.start, a, f));
                }
            }
        }
        queue.sort();
        let mut shared = Arc::new(OpenArchives {
            bundle_dir: bundle_dir.to_path_buf(),
            gost: options.gost,
            state: Mutex::new(State {
                cursor: vec![0; plans.len()],
                done,
                slots,
                stopping: false,
                error: None,
            }),
            changed: Condvar::new(),
            queue: Mutex::new(queue.into_iter().map(|(_, a, f)| (a, f)).collect()),
            plans,
        });
        for (a, plan) in shared.plans.iter().enumerate() {
            plan.fixed_bytes(|offset, bytes| shared.write_at(a, offset, bytes, true))
                .map_err(|e| {
                    BundleError::Io(crate::file_error::FileError {
                        action: "cannot write",
                        path: work_dir.join(&plan.name),
                        source: e,
                    })
                })?;
        }
        // Written once and never read back from memory: the run goes on without them.
        Arc::get_mut(&mut shared)
            .expect("nothing shares the archives yet")
            .plans
            .iter_mut()
            .for_each(ArchivePlan::forget_fixed_bytes);
        shared.advance_all();
        Ok(ArchiveWriter {
            shared,
            on_sealed: options.on_sealed,
            sealers: Mutex::new(Vec::new()),
        })
    }

    /// The archives being written.
    pub fn plans(&self) -> &[ArchivePlan] {
        &self.shared.plans
    }

    /// Starts the sealers: one thread per core, each taking the next unsealed file in offset
    /// order and hashing it as its bytes arrive.
    pub fn start_sealing(&self) {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut sealers = self.sealers.lock().expect("sealers lock");
        for i in 0..workers {
            let shared = self.shared.clone();
            let on_sealed = self.on_sealed.clone();
            sealers.push(
                std::thread::Builder::new()
                    .name(format!("ferry-seal-{i}"))
                    .spawn(move || seal_loop(&shared, on_sealed.as_ref()))
                    .expect("spawning a sealer thread"),
            );
        }
    }

    /// Re-hashes an entry's bytes where they lie and says whether they match its digest
    /// (resuming: the journal said it was done).
    pub async fn entry_is_intact(&self, archive: usize, entry: usize) -> Result<bool, BundleError> {
        let EntryContent::Blob { digest, size } =
            &self.shared.plans[archive].entries[entry].content
        else {
            return Ok(true);
        };
        Ok(self.shared.rehash(archive, entry, *size).await?.finish() == *digest)
    }

    /// Copies the bytes of one entry to another holding the same blob.
    pub async fn copy_entry(
        &self,
        from: (usize, usize),
        to: (usize, usize),
    ) -> Result<(), BundleError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let source = &shared.plans[from.0].entries[from.1];
            let target = shared.plans[to.0].entries[to.1].data_offset;
            let archive = shared.bundle_dir.join(&shared.plans[to.0].name);
            let mut at = 0;
            shared.read_range(from.0, source.data_offset, source.size(), |bytes| {
                shared
                    .write_at(to.0, target + at, bytes, false)
                    .map_err(io_error("cannot write", &archive))?;
                at += bytes.len() as u64;
                Ok(())
            })
        })
        .await
        .expect("a copy task does not panic")
    }

    /// Opens a sink for a blob entry. With `resume_at` > 0 the bytes already there are
    /// re-hashed and writing continues after them.
    pub async fn sink(
        &self,
        archive: usize,
        entry: usize,
        resume_at: u64,
        checkpoint: Option<CheckpointHook>,
    ) -> Result<EntrySink, BundleError> {
        EntrySink::open(self.shared.clone(), archive, entry, resume_at, checkpoint).await
    }

    /// Marks an entry's bytes as in place, letting the sealers go past it.
    pub fn complete(&self, archive: usize, entry: usize) {
        let mut state = self.shared.lock();
        state.done[archive][entry] = true;
        OpenArchives::advance(&mut state, archive);
        drop(state);
        self.shared.changed.notify_all();
    }

    /// The first error a sealer met, as text (the error itself is returned by `finish`).
    pub fn failure(&self) -> Option<String> {
        self.shared.lock().error.as_ref().map(|e| e.to_string())
    }

    /// Waits until every file is sealed and returns the archives' records, in plan order.
    /// Blocking.
    pub fn finish(self) -> Result<Vec<ArchiveRecord>, BundleError> {
        {
            let mut state = self.shared.lock();
            loop {
                if let Some(error) = state.error.take() {
                    state.stopping = true;
                    drop(state);
                    self.shared.changed.notify_all();
                    return Err(error);
                }
                if state.slots.iter().flatten().all(|s| s.record.is_some()) {
                    break;
                }
                state = self.shared.changed.wait(state).expect("writer state lock");
            }
        }
        fsync_dir(&self.shared.bundle_dir)
            .map_err(io_error("cannot sync", &self.shared.bundle_dir))?;
        let state = self.shared.lock();
        Ok(self
            .shared
            .plans
            .iter()
            .zip(&state.slots)
            .map(|(plan, slots)| ArchiveRecord {
                name: plan.name.clone(),
                files: slots
                    .iter()
                    .map(|s| s.record.clone().expect("every file is sealed"))
                    .collect(),
                blobs: plan.blobs(),
            })
            .collect())
    }

    /// Stops the sealers; files not sealed stay under their temporary names.
    pub fn stop(&self) {
        self.shared.lock().stopping = true;
        self.shared.changed.notify_all();
        for sealer in self.sealers.lock().expect("sealers lock").drain(..) {
            let _ = sealer.join();
        }
    }
}

impl Drop for ArchiveWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A sealer: takes the next unsealed file in offset order and seals it, until none is left,
/// the writer stops, or sealing fails (the first failure is kept for `finish`).
fn seal_loop(shared: &OpenArchives, on_sealed: Option<&SealHook>) {
    loop {
        let next = shared.queue.lock().expect("queue lock").pop_front();
        let Some((archive, file)) = next else { return };
        match seal(shared, on_sealed, archive, file) {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                let mut state = shared.lock();
                state.error.get_or_insert(error);
                state.stopping = true;
                drop(state);
                shared.changed.notify_all();
                return;
            }
        }
    }
}

/// Hashes one file as its bytes become final, then publishes it. `Ok(false)` when the
/// writer is stopping.
fn seal(
    shared: &OpenArchives,
    on_sealed: Option<&SealHook>,
    archive: usize,
    file: usize,
) -> Result<bool, BundleError> {
    let planned = &shared.plans[archive].files[file];
    let (handle, temp) = {
        let state = shared.lock();
        let slot = &state.slots[archive][file];
        (slot.handle.clone().expect("unsealed"), slot.temp.clone())
    };
    let mut sha256 = Sha256Hasher::new();
    let mut gost = shared.gost.then(streebog::Streebog256::new);
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut hashed = 0u64;
    while hashed < planned.size {
        let ready = {
            let mut state = shared.lock();
            loop {
                if state.stopping {
                    return Ok(false);
                }
                let ready = shared.ready(&state, archive, file);
                if ready > hashed {
                    break ready;
                }
                state = shared.changed.wait(state).expect("writer state lock");
            }
        };
        while hashed < ready {
            let n = (ready - hashed).min(READ_BUFFER as u64) as usize;
            handle
                .read_exact_at(&mut buffer[..n], hashed)
                .map_err(io_error("cannot read", &temp))?;
            sha256.update(&buffer[..n]);
            if let Some(gost) = &mut gost {
                gost.update(&buffer[..n]);
            }
            hashed += n as u64;
        }
    }
    handle.sync_all().map_err(io_error("cannot sync", &temp))?;
    drop(handle);
    let record = FileRecord {
        name: planned.name.clone(),
        size: planned.size,
        sha256: sha256.finish().hex().to_string(),
        gost: gost.map(|g| hex::encode(g.finalize())),
    };
    if let Some(hook) = on_sealed {
        hook(&shared.plans[archive].name, &record).map_err(io_error("cannot record", &temp))?;
    }
    publish(&shared.bundle_dir, &temp, &record)?;
    let mut state = shared.lock();
    let slot = &mut state.slots[archive][file];
    slot.handle = None;
    slot.record = Some(record);
    drop(state);
    shared.changed.notify_all();
    Ok(true)
}

/// Renames a finished file into the bundle directory with its `.gostsum` (or without, removing
/// a stale one). Across file systems the file is copied under a temporary name first.
fn publish(bundle_dir: &Path, temp: &Path, record: &FileRecord) -> Result<(), BundleError> {
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
