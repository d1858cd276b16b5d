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

/// Blobs of a plan, read from the repositories that hold them.
pub struct SourceBlobs<'a> {
    client: &'a RegistryClient,
    repositories: HashMap<Digest, String>,
    previous: LocalBlobs,
}

impl<'a> SourceBlobs<'a> {
    /// Each blob of `plan` is read from the repository of the first image that needs it;
    /// blobs in `previous` are copied from there instead.
    pub fn new(client: &'a RegistryClient, plan: &Plan, previous: LocalBlobs) -> Self {
        let mut repositories = HashMap::new();
        for image in &plan.images {
            for digest in image.parts.keys() {
                repositories
                    .entry(digest.clone())
                    .or_insert_with(|| image.repository.clone());
            }
        }
        SourceBlobs {
            client,
            repositories,
            previous,
        }
    }

    /// True when the blob comes from local files, not the network.
    pub fn is_local(&self, digest: &Digest) -> bool {
        self.previous.contains(digest)
    }
}

impl Fetch for SourceBlobs<'_> {
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
        let repository = self
            .repositories
            .get(&job.digest)
            .expect("every blob of the plan has a repository");
        let descriptor = Descriptor::new("application/octet-stream", job.digest.clone(), job.size);
        self.client
            .download_blob(repository, &descriptor, &mut sink, progress)
            .await?;
        sink.finish()
            .await
            .map_err(|e| self.client.blob_error(repository, e))?;
        Ok(())
    }
}
