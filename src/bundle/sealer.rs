//! The sealers of an [`super::writer::ArchiveWriter`]: one thread per core, each taking the next
//! unsealed file in offset order and hashing it (SHA-256 and, when asked, Streebog-256) as its
//! bytes land, then publishing it once every entry it holds is done. Following the landed
//! bytes, not the finished blobs, keeps a sealer level with the download: when the last byte
//! arrives, little is left to hash.

use std::os::unix::fs::FileExt;

use bytes::{Bytes, BytesMut};

use super::metadata::FileRecord;
use super::open_archives::{OpenArchives, READ_BUFFER};
use super::publish::{SealHook, publish};
use super::{BundleError, io_error};
use crate::digest::{GostHasher, Sha256Hasher};

/// Sealers a writer runs: one per core.
pub(super) fn sealer_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Takes the next unsealed file in offset order and seals it, until none is left, the writer
/// stops, or sealing fails (the first failure is kept for `finish`).
pub(super) fn seal_loop(shared: &OpenArchives, on_sealed: Option<&SealHook>) {
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

/// The sums of one file, fed in order. Streebog runs on a thread of its own, so that a single
/// file's sealer keeps Streebog busy on one core while it reads and runs SHA-256 on another.
struct Sums {
    sha256: Sha256Hasher,
    gost: Option<GostHasher>,
}

impl Sums {
    fn new(gost: bool) -> Self {
        Sums {
            sha256: Sha256Hasher::new(),
            gost: gost.then(GostHasher::spawn),
        }
    }

    fn update(&mut self, bytes: Bytes) {
        self.sha256.update(&bytes);
        if let Some(gost) = &mut self.gost {
            gost.update(bytes);
        }
    }
}

/// Hashes one file as its bytes land, then publishes it once they are all final. `Ok(false)`
/// when the writer is stopping.
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
    let mut sums = Sums::new(shared.gost);
    let mut hashed = 0u64;
    loop {
        let landed = {
            let mut state = shared.lock();
            loop {
                if state.stopping {
                    return Ok(false);
                }
                // Bytes already hashed were written again: what was hashed may not be what
                // lies there now, so the file is hashed from its start.
                if let Some(at) = state.slots[archive][file].rewound.take()
                    && at < hashed
                {
                    sums = Sums::new(shared.gost);
                    hashed = 0;
                }
                let ready = shared.ready(&state, archive, file);
                if ready.done == planned.size && hashed == planned.size {
                    break None;
                }
                if ready.landed > hashed {
                    break Some(ready.landed);
                }
                state = shared.changed.wait(state).expect("writer state lock");
            }
        };
        let Some(landed) = landed else { break };
        while hashed < landed {
            let n = (landed - hashed).min(READ_BUFFER as u64) as usize;
            // A fresh buffer each time: the Streebog thread may still hold the last one.
            let mut buffer = BytesMut::zeroed(n);
            handle
                .read_exact_at(&mut buffer, hashed)
                .map_err(io_error("cannot read", &temp))?;
            sums.update(buffer.freeze());
            hashed += n as u64;
        }
    }
    handle.sync_all().map_err(io_error("cannot sync", &temp))?;
    drop(handle);
    let record = FileRecord {
        name: planned.name.clone(),
        size: planned.size,
        sha256: sums.sha256.finish().hex().to_string(),
        gost: sums.gost.map(GostHasher::finish),
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
