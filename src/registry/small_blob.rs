//! A small blob read whole into memory: downloaded (and resumed) like any blob, but into a
//! buffer no larger than its descriptor's size, and refused unless it hashes to its digest.

use super::blobs::ProgressFn;
use super::client::RegistryClient;
use super::error::RegistryError;
use crate::digest::Digest;
use crate::manifest::Descriptor;
use crate::store::{BlobSink, StoreError};

impl RegistryClient {
    /// The bytes of the blob `descriptor` names, checked against its digest and size. Memory
    /// is bounded by the descriptor's size: a registry sending more is refused. Only for blobs
    /// the caller knows to be small.
    pub async fn read_blob(
        &self,
        repository: &str,
        descriptor: &Descriptor,
    ) -> Result<Vec<u8>, RegistryError> {
        let mut sink = MemorySink {
            digest: descriptor.digest.clone(),
            size: descriptor.size,
            bytes: Vec::with_capacity(usize::try_from(descriptor.size).unwrap_or(0)),
        };
        let ignore: ProgressFn = std::sync::Arc::new(|_| {});
        self.download_blob(repository, descriptor, &mut sink, &ignore)
            .await?;
        let actual = Digest::of(&sink.bytes);
        if actual != descriptor.digest {
            return Err(self.blob_error(
                repository,
                StoreError::DigestMismatch {
                    expected: descriptor.digest.clone(),
                    actual,
                },
            ));
        }
        Ok(sink.bytes)
    }
}

/// A blob's bytes gathered in memory, never past its announced size.
struct MemorySink {
    digest: Digest,
    size: u64,
    bytes: Vec<u8>,
}

impl BlobSink for MemorySink {
    fn offset(&self) -> u64 {
        self.bytes.len() as u64
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let total = self.offset().saturating_add(bytes.len() as u64);
        if total > self.size {
            return Err(StoreError::SizeMismatch {
                digest: self.digest.clone(),
                expected: self.size,
                actual: total,
            });
        }
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    async fn restart(&mut self) -> Result<(), StoreError> {
        self.bytes.clear();
        Ok(())
    }
}
