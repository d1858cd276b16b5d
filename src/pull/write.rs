//! Writing the archives: their files opened in the work directory at full size, the blobs an
//! interrupted run finished re-checked where they lie, every other blob fetched into its place
//! (from the source, or copied from an earlier layout) while the sealers follow, each step
//! journaled so that a rerun can continue.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::error::PullError;
use super::fetch::SourceBlobs;
use super::options::PullOptions;
use super::resume::Begun;
use super::work::{Journal, Progress, WorkDir};
use crate::bundle::contents::display_path;
use crate::bundle::fill::{FillHooks, FillReport, Filled, fill_and_seal};
use crate::bundle::jobs::{BlobJob, blob_jobs};
use crate::bundle::publish::SealHook;
use crate::bundle::writer::WriterOptions;
use crate::bundle::{ArchivePlan, ArchiveRecord, ArchiveWriter, FileRecord};
use crate::digest::Digest;
use crate::report::{Reporter, human_bytes};
use crate::source::Plan;

/// What writing the archives did.
pub struct Written {
    /// The archives, every file sealed in the bundle directory.
    pub records: Vec<ArchiveRecord>,
    /// Distinct blobs (manifests excluded).
    pub blobs: usize,
    /// Bytes fetched from the source in this run.
    pub downloaded: u64,
    /// Bytes kept from an interrupted run (re-checked, not fetched again).
    pub reused: u64,
    /// Blobs copied locally from an earlier layout.
    pub relaid: usize,
    /// Whether an interrupted pull was continued.
    pub resumed: bool,
}

/// Writes the archives of `plan`, laid out as `archives`, in the run `begun`. Once the
/// archive files hold the plan's manifests and held blobs, the plan lets go of their bytes.
pub async fn write(
    options: &PullOptions,
    work: &WorkDir,
    plan: &mut Plan,
    archives: Vec<ArchivePlan>,
    begun: Begun,
    reporter: &Arc<dyn Reporter>,
) -> Result<Written, PullError> {
    let Begun {
        journal,
        progress,
        previous,
        resumed,
    } = begun;
    let journal = Arc::new(journal);
    let writer = open(options, work, archives, &journal, &progress.sealed).await?;
    plan.release_contents();
    let (jobs, reused) = still_to_fetch(&writer, &progress).await?;
    let blobs = writer.plans().iter().flat_map(|p| p.blobs()).count();
    let clients = options.access.clients_of(plan)?;
    let source = SourceBlobs::new(clients, &options.charts, plan, &jobs, previous)?;
    let relaid = jobs.iter().filter(|j| source.is_local(&j.digest)).count();
    let to_fetch: u64 = jobs.iter().fold(0, |sum, j| sum.saturating_add(j.size));

    reporter.begin(
        &format!("pulling into {}", options.dir.display()),
        jobs.len() as u64,
        to_fetch,
    );
    let hooks = journal_hooks(&journal);
    let filled =
        fill_and_seal(writer, &source, jobs, options.concurrency, &hooks, reporter).await?;
    let (records, report) = match filled {
        Filled::Sealed(records, report) => (records, report),
        Filled::Failed(report) => return Err(incomplete(plan, report)),
    };
    reporter.finish(&format!(
        "{} blobs fetched ({}), {} copied within the bundle",
        report.fetched,
        human_bytes(report.fetched_bytes),
        report.copies
    ));
    Ok(Written {
        records,
        blobs,
        downloaded: report.fetched_bytes,
        reused,
        relaid,
        resumed,
    })
}

/// Opens the archive files in the work directory (the `sealed` ones as they are), every file
/// journaled as it is sealed.
async fn open(
    options: &PullOptions,
    work: &WorkDir,
    archives: Vec<ArchivePlan>,
    journal: &Arc<Journal>,
    sealed: &HashMap<String, FileRecord>,
) -> Result<ArchiveWriter, PullError> {
    let on_sealed: SealHook = {
        let journal = journal.clone();
        Arc::new(move |_archive: &str, record: &FileRecord| journal.sealed(record))
    };
    let (dir, work_path) = (options.dir.clone(), work.path().to_path_buf());
    let writer_options = WriterOptions {
        gost: options.gost,
        sealed: sealed.clone(),
        on_sealed: Some(on_sealed),
    };
    let writer = tokio::task::spawn_blocking(move || {
        ArchiveWriter::open(&dir, &work_path, archives, writer_options)
    })
    .await
    .expect("opening the archives does not panic")?;
    Ok(writer)
}

/// The blobs still to fetch, and the bytes kept from an interrupted run: the blobs it finished
/// are re-checked where they lie (and marked complete), not fetched again; a blob it cut goes
/// on from its journaled byte.
async fn still_to_fetch(
    writer: &ArchiveWriter,
    progress: &Progress,
) -> Result<(Vec<BlobJob>, u64), PullError> {
    let mut jobs = Vec::new();
    let mut reused = 0;
    for mut job in blob_jobs(writer.plans()) {
        if progress.done.contains(&job.digest) && all_intact(writer, &job).await? {
            for (a, e) in &job.placements {
                writer.complete(*a, *e);
            }
            reused += job.size;
            continue;
        }
        job.resume_at = progress.at.get(&job.digest).copied().unwrap_or(0);
        reused += job.resume_at;
        jobs.push(job);
    }
    Ok((jobs, reused))
}

/// True when the blob is whole at every place it goes.
async fn all_intact(writer: &ArchiveWriter, job: &BlobJob) -> Result<bool, PullError> {
    for (a, e) in &job.placements {
        if !writer.entry_is_intact(*a, *e).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Journals every blob in place and, every few MiB, how far a blob being written has come. A
/// line that cannot be written costs a rerun some work, not this pull.
fn journal_hooks(journal: &Arc<Journal>) -> FillHooks {
    let done = journal.clone();
    let at = journal.clone();
    FillHooks {
        done: Some(Arc::new(move |digest: &Digest| {
            if let Err(e) = done.done(digest) {
                tracing::warn!("cannot write the pull journal: {e}");
            }
        })),
        checkpoint: Some(Arc::new(move |digest: &Digest, offset: u64| {
            if let Err(e) = at.at(digest, offset) {
                tracing::warn!("cannot write the pull journal: {e}");
            }
        })),
    }
}

/// The error of a fill that failed: the first failure, and every tag left incomplete.
fn incomplete(plan: &Plan, report: FillReport<PullError>) -> PullError {
    let missing: HashSet<&Digest> = report.unfinished.iter().collect();
    let images: Vec<String> = plan
        .images
        .iter()
        .filter(|i| i.parts.keys().any(|d| missing.contains(d)))
        .map(|i| format!("{}:{}", display_path(&i.path), i.tag))
        .collect();
    let (_, first) = report
        .failures
        .into_iter()
        .next()
        .expect("a failed fill has a failure");
    PullError::Incomplete {
        error: Box::new(first),
        failed: missing.len(),
        images,
    }
}
