//! A blob entry filled in place: bytes streamed into an archive at the entry's offset,
//! hashed on the way, gathered into large positioned writes on a blocking thread, told to the
//! sealers as they land, and checkpointed every few MiB so that a journal can resume the blob.

use std::sync::Arc;

use super::BundleError;
use super::open_archives::OpenArchives;
use super::plan::EntryContent;
use crate::digest::{Digest, Sha256Hasher};
use crate::store::{BlobSink, StoreError};

/// Bytes gathered before one positioned write (and one hop to a blocking thread); one per
/// download in flight.
const WRITE_BUFFER: usize = 512 << 10;

/// Told how far a blob's bytes have been written, every few MiB, so a journal can resume it.
pub type CheckpointHook = Arc<dyn Fn(&Digest, u64) + Send + Sync>;

/// Streams one blob entry into its place in the archive, hashing on the way. Bytes are
/// gathered into [`WRITE_BUFFER`]-sized writes done on a blocking thread.
pub struct EntrySink {
    shared: Arc<OpenArchives>,
    archive: usize,
    entry: usize,
    data_offset: u64,
    digest: Digest,
    size: u64,
    written: u64,
    buffer: Vec<u8>,
    hasher: Option<Sha256Hasher>,
    checkpoint: Option<CheckpointHook>,
    checkpointed: u64,
}

/// Bytes between two checkpoints of a blob being written.
const CHECKPOINT_EVERY: u64 = 16 << 20;

impl EntrySink {
    /// Opens a sink on blob entry `entry` of `archive`. With `resume_at` > 0 the bytes
    /// already there are re-hashed and writing continues after them.
    pub(super) async fn open(
        shared: Arc<OpenArchives>,
        archive: usize,
        entry: usize,
        resume_at: u64,
        checkpoint: Option<CheckpointHook>,
    ) -> Result<EntrySink, BundleError> {
        let planned = &shared.plans[archive].entries[entry];
        let EntryContent::Blob { digest, size } = &planned.content else {
            panic!("only blob entries are filled through a sink");
        };
        let resume_at = resume_at.min(*size);
        let hasher = shared.rehash(archive, entry, resume_at).await?;
        shared.land(archive, entry, resume_at);
        Ok(EntrySink {
            archive,
            entry,
            data_offset: planned.data_offset,
            digest: digest.clone(),
            size: *size,
            written: resume_at,
            // Most blobs are far smaller than the buffer: one sized to the blob keeps eight
            // small downloads from holding 4 MiB between them.
            buffer: Vec::with_capacity(
                WRITE_BUFFER.min(usize::try_from(*size).unwrap_or(usize::MAX)),
            ),
            hasher: Some(hasher),
            checkpoint,
            checkpointed: resume_at,
            shared,
        })
    }

    /// The blob being written.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Its size.
    pub fn size(&self) -> u64 {
        self.size
    }

    async fn flush(&mut self) -> Result<(), StoreError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let buffer = std::mem::take(&mut self.buffer);
        let mut hasher = self.hasher.take().expect("one flush at a time");
        let shared = self.shared.clone();
        let (archive, offset) = (self.archive, self.data_offset + self.written);
        let (hasher, mut buffer, result) = tokio::task::spawn_blocking(move || {
            hasher.update(&buffer);
            let result = shared.write_at(archive, offset, &buffer, false);
            (hasher, buffer, result)
        })
        .await
        .expect("a write task does not panic");
        self.hasher = Some(hasher);
        let n = buffer.len() as u64;
        buffer.clear();
        self.buffer = buffer;
        let plan = &self.shared.plans[self.archive];
        result.map_err(|source| {
            StoreError::Io(crate::file_error::FileError {
                action: "cannot write",
                path: self.shared.lock().slots[self.archive][plan.file_at(offset)]
                    .temp
                    .clone(),
                source,
            })
        })?;
        self.written += n;
        self.shared.land(self.archive, self.entry, self.written);
        if let Some(hook) = &self.checkpoint
            && self.written - self.checkpointed >= CHECKPOINT_EVERY
        {
            hook(&self.digest, self.written);
            self.checkpointed = self.written;
        }
        Ok(())
    }

    /// Writes what is buffered and checks size and digest. The entry is not marked complete:
    /// the caller does that once copies elsewhere are made.
    pub async fn finish(mut self) -> Result<(), StoreError> {
        self.flush().await?;
        if self.written != self.size {
            return Err(StoreError::SizeMismatch {
                digest: self.digest.clone(),
                expected: self.size,
                actual: self.written,
            });
        }
        let actual = self.hasher.take().expect("hasher present").finish();
        if actual != self.digest {
            return Err(StoreError::DigestMismatch {
                expected: self.digest.clone(),
                actual,
            });
        }
        Ok(())
    }
}

impl BlobSink for EntrySink {
    fn offset(&self) -> u64 {
        self.written + self.buffer.len() as u64
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let after = self.offset() + bytes.len() as u64;
        if after > self.size {
            return Err(StoreError::SizeMismatch {
                digest: self.digest.clone(),
                expected: self.size,
                actual: after,
            });
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = WRITE_BUFFER - self.buffer.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.buffer.extend_from_slice(now);
            rest = later;
            if self.buffer.len() == WRITE_BUFFER {
                self.flush().await?;
            }
        }
        Ok(())
    }

    async fn restart(&mut self) -> Result<(), StoreError> {
        // Before any byte is written again, so a sealer that hashed the old ones starts over.
        self.shared.land(self.archive, self.entry, 0);
        self.buffer.clear();
        self.written = 0;
        self.checkpointed = 0;
        self.hasher = Some(Sha256Hasher::new());
        Ok(())
    }
}
