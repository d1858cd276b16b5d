//! Filling archives: every blob entry of an [`ArchiveWriter`] fetched once from a source (a
//! registry, local files) straight into its place, in parallel and in the order the sealers
//! can follow ([`super::jobs`]); a blob the bundle holds in several places is copied
//! locally to the others. The source is whatever implements [`Fetch`].

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::io::AsyncReadExt;

use super::BundleError;
use super::jobs::BlobJob;
use super::metadata::ArchiveRecord;
use super::writer::{ArchiveWriter, CheckpointHook, EntrySink};
use crate::digest::Digest;
use crate::report::{Outcome, ProgressFn, Reporter};
use crate::segment::BlobSource;
use crate::store::BlobSink;

/// A source of blobs.
pub trait Fetch: Sync {
    /// What can go wrong fetching.
    type Error: From<BundleError> + std::fmt::Display + Send;

    /// Streams the blob into `sink` (which may already hold `sink.offset()` bytes) and checks
    /// it with [`EntrySink::finish`].
    fn fetch(
        &self,
        job: &BlobJob,
        sink: EntrySink,
        progress: &ProgressFn,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Told that a blob is in place everywhere it goes.
pub type DoneHook = Arc<dyn Fn(&Digest) + Send + Sync>;

/// Told about progress, so that an interrupted fill can resume.
#[derive(Clone, Default)]
pub struct FillHooks {
    /// A blob is in place everywhere it goes.
    pub done: Option<DoneHook>,
    /// A blob being written has reached an offset.
    pub checkpoint: Option<CheckpointHook>,
}

/// What a fill did.
#[derive(Debug)]
pub struct FillReport<E> {
    /// Blobs fetched from the source.
    pub fetched: usize,
    /// Bytes fetched (counting a resumed blob's remainder only).
    pub fetched_bytes: u64,
    /// Places filled by a local copy.
    pub copies: usize,
    /// Blobs that failed, with why; after the first failure no new blob is started.
    pub failures: Vec<(Digest, E)>,
    /// Blobs not in place when the fill ended (failed or never started).
    pub unfinished: Vec<Digest>,
}

/// Bytes of blobs in flight at once, beyond the first: a handful of big blobs downloaded side by
/// side would all finish at the end of the same long wait, and the sealers, which hash each file
/// in order as its bytes land, could follow only one of them. Small blobs still go
/// `concurrency` at a time.
const IN_FLIGHT: u64 = 128 << 20;

/// Blobs this small start whatever is in flight: they cost a round trip, not bandwidth.
const SMALL: u64 = 4 << 20;

/// How a fill ended.
#[derive(Debug)]
pub enum Filled<E> {
    /// Every blob in place and every file sealed: the archives' records.
    Sealed(Vec<ArchiveRecord>, FillReport<E>),
    /// A blob failed: no new blob was started and the sealers were stopped; what is finished
    /// stays where it is.
    Failed(FillReport<E>),
}

/// Starts the sealers of `writer`, fills every job (see [`fill`]) in the order given (that of
/// [`super::jobs::blob_jobs`]) and waits until the last file is sealed. The one way archives are
/// filled, from a registry or from local files.
pub async fn fill_and_seal<F: Fetch>(
    writer: ArchiveWriter,
    fetcher: &F,
    jobs: Vec<BlobJob>,
    concurrency: usize,
    hooks: &FillHooks,
    reporter: &Arc<dyn Reporter>,
) -> Result<Filled<F::Error>, BundleError> {
    writer.start_sealing();
    let report = fill(&writer, fetcher, jobs, concurrency, hooks, reporter).await;
    if !report.failures.is_empty() {
        writer.stop();
        return Ok(Filled::Failed(report));
    }
    let records = tokio::task::spawn_blocking(move || writer.finish())
        .await
        .expect("sealing does not panic")?;
    Ok(Filled::Sealed(records, report))
}

/// Fetches every job with at most `concurrency` at once (and about [`IN_FLIGHT`] bytes), copies
/// each blob to its other places, and marks the entries complete for the sealers.
async fn fill<F: Fetch>(
    writer: &ArchiveWriter,
    fetcher: &F,
    jobs: Vec<BlobJob>,
    concurrency: usize,
    hooks: &FillHooks,
    reporter: &Arc<dyn Reporter>,
) -> FillReport<F::Error> {
    let mut report = FillReport {
        fetched: 0,
        fetched_bytes: 0,
        copies: 0,
        failures: Vec::new(),
        unfinished: Vec::new(),
    };
    let progress: ProgressFn = {
        let reporter = reporter.clone();
        Arc::new(move |n| reporter.bytes(n))
    };
    let mut waiting = jobs.into_iter().peekable();
    let mut running = FuturesUnordered::new();
    let mut in_flight = 0u64;
    loop {
        while report.failures.is_empty() && running.len() < concurrency.max(1) {
            let Some(next) = waiting.peek() else { break };
            if !running.is_empty() && next.size > SMALL && in_flight + next.size > IN_FLIGHT {
                break;
            }
            let job = waiting.next().expect("peeked");
            in_flight += job.size;
            let progress = &progress;
            running.push(async move {
                let result = fill_one(writer, fetcher, &job, hooks, progress, reporter).await;
                (job, result)
            });
        }
        reporter.in_flight(running.len());
        let Some((job, result)) = running.next().await else {
            break;
        };
        in_flight -= job.size;
        match result {
            Ok(copies) => {
                report.fetched += 1;
                report.fetched_bytes += job.size - job.resume_at;
                report.copies += copies;
                reporter.item(&job.digest.short(), job.size, Outcome::Transferred);
            }
            Err(error) => {
                report.unfinished.push(job.digest.clone());
                report.failures.push((job.digest, error));
            }
        }
    }
    report.unfinished.extend(waiting.map(|job| job.digest));
    report
}

/// Brings one blob in: fetch into the first place, copy to the others, mark all complete.
/// A resumed blob that fails is tried once more from its first byte (the bytes kept from the
/// earlier run may be what is wrong). Returns the number of local copies.
async fn fill_one<F: Fetch>(
    writer: &ArchiveWriter,
    fetcher: &F,
    job: &BlobJob,
    hooks: &FillHooks,
    progress: &ProgressFn,
    reporter: &Arc<dyn Reporter>,
) -> Result<usize, F::Error> {
    let (archive, entry) = job.placements[0];
    let first = writer
        .sink(archive, entry, job.resume_at, hooks.checkpoint.clone())
        .await?;
    match fetcher.fetch(job, first, progress).await {
        Err(error) if job.resume_at > 0 => {
            reporter.warn(&format!(
                "{}: resuming at byte {} failed ({error}); fetching it again from the start",
                job.digest, job.resume_at
            ));
            let again = writer
                .sink(archive, entry, 0, hooks.checkpoint.clone())
                .await?;
            fetcher.fetch(job, again, progress).await?;
        }
        other => other?,
    }
    for to in &job.placements[1..] {
        writer.copy_entry((archive, entry), *to).await?;
    }
    for (a, e) in &job.placements {
        writer.complete(*a, *e);
    }
    if let Some(done) = &hooks.done {
        done(&job.digest);
    }
    Ok(job.placements.len() - 1)
}

/// Blobs found in local files: layouts on disk, or the files of an earlier run.
#[derive(Debug, Clone, Default)]
pub struct LocalBlobs {
    sources: HashMap<Digest, BlobSource>,
}

impl LocalBlobs {
    /// No blobs yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `digest` readable from `source`.
    pub fn insert(&mut self, digest: Digest, source: BlobSource) {
        self.sources.insert(digest, source);
    }

    /// True when the blob can be read here.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.sources.contains_key(digest)
    }
}

impl Fetch for LocalBlobs {
    type Error = BundleError;

    async fn fetch(
        &self,
        job: &BlobJob,
        mut sink: EntrySink,
        progress: &ProgressFn,
    ) -> Result<(), BundleError> {
        let source = self
            .sources
            .get(&job.digest)
            .ok_or_else(|| BundleError::BlobUnavailable {
                digest: job.digest.clone(),
            })?;
        let first = source
            .parts()
            .first()
            .map(|p| p.path.to_path_buf())
            .unwrap_or_default();
        let mut reader = source
            .open_at(sink.offset())
            .map_err(super::io_error("cannot read", &first))?;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = reader
                .read(&mut buffer)
                .await
                .map_err(super::io_error("cannot read", &first))?;
            if n == 0 {
                break;
            }
            sink.write(&buffer[..n]).await?;
            progress(n as u64);
        }
        sink.finish().await?;
        Ok(())
    }
}
