//! Where a pull's blobs come from: the source registry, a Helm repository (a chart's `.tgz`),
//! or — when a rerun changed the chunk size or the GOST setting — the files of the earlier
//! layout, copied locally and checked like any download.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::error::PullError;
use crate::bundle::fill::{Fetch, LocalBlobs};
use crate::bundle::jobs::BlobJob;
use crate::bundle::writer::EntrySink;
use crate::digest::Digest;
use crate::imageset::charts::{ChartClient, ChartError, ChartOptions};
use crate::manifest::Descriptor;
use crate::registry::RegistryClient;
use crate::report::ProgressFn;
use crate::source::{Plan, WebBlob};

/// Blobs of a plan, read from the registries and repositories that hold them.
pub struct SourceBlobs {
    clients: HashMap<String, RegistryClient>,
    /// The (registry, repository) pairs blobs are read from, each once: thousands of blobs
    /// share a few dozen.
    repositories: Vec<(String, String)>,
    /// Digest → its place in `repositories`.
    places: HashMap<Digest, usize>,
    /// Blobs read from a URL (Helm charts).
    web: BTreeMap<Digest, WebBlob>,
    /// The client that reads them, made when there are any.
    charts: Option<ChartClient>,
    previous: LocalBlobs,
}

impl SourceBlobs {
    /// Each blob of `jobs` is read from the repository of the first image of `plan` that
    /// needs it, with the client of its registry, or from its URL as `charts` says; blobs in
    /// `previous` are copied from there instead.
    pub fn new(
        clients: HashMap<String, RegistryClient>,
        charts: &ChartOptions,
        plan: &Plan,
        jobs: &[BlobJob],
        previous: LocalBlobs,
    ) -> Result<Self, PullError> {
        // Only what is still to fetch gets a place: manifests came with the plan, and the
        // blobs an interrupted run finished are where they belong.
        let wanted: HashSet<&Digest> = jobs.iter().map(|j| &j.digest).collect();
        let mut repositories: Vec<(String, String)> = Vec::new();
        let mut numbers: HashMap<(&str, &str), usize> = HashMap::new();
        let mut places = HashMap::with_capacity(wanted.len());
        for image in &plan.images {
            let key = (image.registry.as_str(), image.repository.as_str());
            let number = *numbers.entry(key).or_insert_with(|| {
                repositories.push((image.registry.clone(), image.repository.clone()));
                repositories.len() - 1
            });
            for digest in image.parts.keys().filter(|d| wanted.contains(d)) {
                places.entry(digest.clone()).or_insert(number);
            }
        }
        let charts = (!plan.web_blobs.is_empty())
            .then(|| ChartClient::new(charts))
            .transpose()
            .map_err(chart_error)?;
        Ok(SourceBlobs {
            clients,
            repositories,
            places,
            web: plan.web_blobs.clone(),
            charts,
            previous,
        })
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
        if let Some(blob) = self.web.get(&job.digest) {
            let charts = self
                .charts
                .as_ref()
                .expect("a plan with web blobs has a chart client");
            charts
                .download(blob, job.size, &mut sink, progress)
                .await
                .map_err(chart_error)?;
            sink.finish()
                .await
                .map_err(|e| chart_error(ChartError::from_store(&blob.url, e)))?;
            return Ok(());
        }
        let place = self
            .places
            .get(&job.digest)
            .expect("every blob of the plan has a place");
        let (registry, repository) = &self.repositories[*place];
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

fn chart_error(error: ChartError) -> PullError {
    PullError::Chart(Box::new(error))
}
