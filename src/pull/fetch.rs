//! Where a pull's blobs come from: the source registry, or — when a rerun changed the chunk
//! size or the GOST setting — the files of the earlier layout, copied locally and checked like
//! any download.

use std::collections::HashMap;

use super::PullError;
use crate::bundle::fill::{BlobJob, Fetch, LocalBlobs};
use crate::bundle::writer::EntrySink;
use crate::digest::Digest;
use crate::manifest::Descriptor;
use crate::registry::RegistryClient;
use crate::report::ProgressFn;
use crate::source::Plan;

/// Blobs of a plan, read from the registries and repositories that hold them.
pub struct SourceBlobs {
    clients: HashMap<String, RegistryClient>,
    /// Digest → (registry, repository).
    places: HashMap<Digest, (String, String)>,
    previous: LocalBlobs,
}

impl SourceBlobs {
    /// Each blob of `plan` is read from the repository of the first image that needs it, with
    /// the client of its registry; blobs in `previous` are copied from there instead.
    pub fn new(
        clients: HashMap<String, RegistryClient>,
        plan: &Plan,
        previous: LocalBlobs,
    ) -> Self {
        let mut places = HashMap::new();
        for image in &plan.images {
            for digest in image.parts.keys() {
                places
                    .entry(digest.clone())
                    .or_insert_with(|| (image.registry.clone(), image.repository.clone()));
            }
        }
        SourceBlobs {
            clients,
            places,
            previous,
        }
    }

    /// True when the blob comes from local files, not the network.
    pub fn is_local(&self, digest: &Digest) -> bool {
        self.previous.contains(digest)
    }
}

impl Fetch for SourceBlobs {
    type Error = PullError;

    async fn fetch(
        &self,
        job: &BlobJob,
        mut sink: EntrySink,
        progress: &ProgressFn,
    ) -> Result<(), PullError> {
        if self.previous.contains(&job.digest) {
            return Ok(self.previous.fetch(job, sink, progress).await?);
        }
        let (registry, repository) = self
            .places
            .get(&job.digest)
            .expect("every blob of the plan has a place");
        let client = &self.clients[registry];
        let descriptor = Descriptor::new("application/octet-stream", job.digest.clone(), job.size);
        client
            .download_blob(repository, &descriptor, &mut sink, progress)
            .await?;
        sink.finish()
            .await
            .map_err(|e| client.blob_error(repository, e))?;
        Ok(())
    }
}
