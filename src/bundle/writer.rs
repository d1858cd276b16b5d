//! Writes archives laid out by [`ArchivePlan`]s. Every file (a whole tar or a chunk) is created
//! under a temporary name in the work directory at its full size; headers and generated entries
//! are written at once; blob data arrives later, in any order, through [`EntrySink`]s. A pool of
//! sealers (one per core, [`super::sealer`]) hashes each file in order as its bytes land
//! (SHA-256 and, when asked, Streebog-256), syncs it and renames it into the bundle directory as
//! soon as it is complete, so hashing follows the downloads and no file is read back afterwards.

use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::metadata::{ArchiveRecord, FileRecord};
use super::open_archives::{OpenArchives, Slot, State};
use super::plan::{ArchivePlan, EntryContent};
use super::publish::{SealHook, publish, temp_name};
use super::{BundleError, io_error};
use crate::store::fsync_dir;

// The sink a writer opens, and the hook it takes, are part of the writer's API.
pub use super::entry_sink::{CheckpointHook, EntrySink};

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
                        Slot::new(temp, None, Some(record.clone()))
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
                        Slot::new(temp, Some(Arc::new(handle)), None)
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
                landed: plans.iter().map(|p| vec![0; p.entries.len()]).collect(),
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
        let workers = super::sealer::sealer_count();
        let mut sealers = self.sealers.lock().expect("sealers lock");
        for i in 0..workers {
            let shared = self.shared.clone();
            let on_sealed = self.on_sealed.clone();
            sealers.push(
                std::thread::Builder::new()
                    .name(format!("ferry-seal-{i}"))
                    .spawn(move || super::sealer::seal_loop(&shared, on_sealed.as_ref()))
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
        self.shared.advance(&mut state, archive, entry);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{Digest, streebog256_hex};
    use crate::store::BlobSink;

    const MIB: usize = 1 << 20;

    /// A writer of one archive holding `blobs` (with their bytes), in chunks of `chunk_size`.
    fn writer(dir: &Path, blobs: &[&[u8]], chunk_size: u64) -> ArchiveWriter {
        let entries = blobs
            .iter()
            .map(|bytes| {
                let digest = Digest::of(bytes);
                let path = format!("blobs/sha256/{}", digest.hex());
                let size = bytes.len() as u64;
                (path.into(), EntryContent::Blob { digest, size })
            })
            .collect();
        let plan = ArchivePlan::new("t.tar", entries, chunk_size).unwrap();
        let options = WriterOptions {
            gost: true,
            ..WriterOptions::default()
        };
        ArchiveWriter::open(&dir.join("out"), &dir.join("work"), vec![plan], options).unwrap()
    }

    /// The entry holding `bytes`.
    fn entry_of(writer: &ArchiveWriter, bytes: &[u8]) -> usize {
        let digest = Digest::of(bytes);
        let plan = &writer.plans()[0];
        plan.entries
            .iter()
            .position(
                |e| matches!(&e.content, EntryContent::Blob { digest: d, .. } if *d == digest),
            )
            .unwrap()
    }

    #[test]
    fn each_file_is_ready_as_far_as_its_own_bytes_have_landed() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (vec![1u8; 3 * MIB], vec![2u8; 3 * MIB]);
        let writer = writer(dir.path(), &[&a, &b], MIB as u64);
        let shared = &writer.shared;
        let later = entry_of(&writer, &a).max(entry_of(&writer, &b));
        let plan = &writer.plans()[0];
        let data = plan.entries[later].data_offset;
        // A chunk that holds nothing but the later blob's bytes, and the first chunk.
        let middle = plan.file_at(data + 3 * MIB as u64 / 2);
        assert!(middle > 1);
        // The later blob has landed whole, the earlier not at all: the later blob's chunks are
        // ready, not held back by the earlier ones; nothing is final yet.
        shared.land(0, later, 3 * MIB as u64);
        let state = shared.lock();
        let ready = shared.ready(&state, 0, middle);
        assert_eq!(ready.landed, plan.files[middle].size, "{ready:?}");
        assert_eq!(ready.done, 0);
        assert_eq!(shared.ready(&state, 0, 0).landed, 512);
        drop(state);
        // Written again from its byte 1000: the chunks that held the dropped bytes are rewound.
        shared.land(0, later, 1000);
        let state = shared.lock();
        let rewound: Vec<Option<u64>> = state.slots[0].iter().map(|s| s.rewound).collect();
        let at = plan.file_at(data + 1000);
        let last = plan.file_at(data + 3 * MIB as u64 - 1);
        assert_eq!(rewound[at], Some(data + 1000 - plan.files[at].start));
        assert!(rewound[..at].iter().all(Option::is_none), "{rewound:?}");
        assert!(
            rewound[at + 1..=last].iter().all(Option::is_some),
            "{rewound:?}"
        );
    }

    #[tokio::test]
    async fn bytes_hashed_and_then_written_again_are_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let blob: Vec<u8> = (0..3 * MIB).map(|i| (i * 7 / 3) as u8).collect();
        for chunk_size in [0, MIB as u64] {
            let writer = writer(dir.path(), &[&blob], chunk_size);
            let entry = entry_of(&writer, &blob);
            writer.start_sealing();
            let mut sink = writer.sink(0, entry, 0, None).await.unwrap();
            // Wrong bytes land first, and the sealers get time to hash them.
            sink.write(&vec![0xee; 2 * MIB]).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            sink.restart().await.unwrap();
            sink.write(&blob).await.unwrap();
            sink.finish().await.unwrap();
            writer.complete(0, entry);
            let records = tokio::task::spawn_blocking(move || writer.finish())
                .await
                .unwrap()
                .unwrap();
            for record in &records[0].files {
                let bytes = std::fs::read(dir.path().join("out").join(&record.name)).unwrap();
                assert_eq!(record.sha256, Digest::of(&bytes).hex());
                assert_eq!(
                    record.gost.as_deref(),
                    Some(streebog256_hex(&bytes).as_str())
                );
            }
            std::fs::remove_dir_all(dir.path().join("out")).unwrap();
        }
    }
}
