//! An earlier run in the work directory: continued when it asked the same within 24 hours and
//! every file it sealed is still whole; re-laid when only the chunk size or the GOST setting
//! changed (its finished blobs copied into the new layout); else discarded, with what it
//! published, and started over, saying why.

use std::path::Path;

use super::error::PullError;
use super::layout::archive_plans;
use super::options::PullOptions;
use super::work::{Journal, Progress, RESUME_WINDOW, State, WorkDir, WorkError};
use crate::bundle::fill::LocalBlobs;
use crate::bundle::names::gostsum_name;
use crate::bundle::publish::{remove_if_present, temp_name};
use crate::bundle::{ArchivePlan, EntryContent, FileRecord};
use crate::file_error::FileError;
use crate::report::Reporter;
use crate::segment::{BlobSource, FileSegment};
use crate::source::Plan;

/// How this run relates to an earlier one in the same work directory.
pub enum Start {
    /// Nothing to continue.
    Fresh,
    /// The same request: continue it, with the files laid out as they are.
    Continue(State<'static>, Progress),
    /// The same request with another chunk size or GOST setting: the finished blobs are copied
    /// into the new layout.
    Relay(State<'static>, Progress),
}

/// A run begun in the work directory.
pub struct Begun {
    /// The journal, open for this run's lines.
    pub journal: Journal,
    /// What is finished of the files this run writes: files sealed, blobs done and cut.
    pub progress: Progress,
    /// The blobs of an earlier layout, copied from there rather than fetched.
    pub previous: LocalBlobs,
    /// Whether an interrupted pull is continued.
    pub resumed: bool,
}

/// Decides what to do with what an earlier run left in the work directory. A run that would
/// be continued must find every file it sealed as it sealed it; else it starts over.
pub async fn earlier_run(
    options: &PullOptions,
    work: &WorkDir,
    reporter: &dyn Reporter,
) -> Result<Start, PullError> {
    let start = decide(options, work, reporter)?;
    if let Start::Continue(state, progress) = &start
        && let Err(reason) = check_sealed(options, work, progress).await
    {
        reporter.warn(&format!("starting over: {reason}"));
        discard(options, work, state, progress)?;
        return Ok(Start::Fresh);
    }
    Ok(start)
}

impl Start {
    /// The plan the earlier run resolved, when this run goes on with it.
    /// A continued run's state gives its plan up to it: nothing after this reads it.
    pub fn resumed_plan(
        &mut self,
        work: &WorkDir,
        reporter: &dyn Reporter,
    ) -> Result<Option<Plan>, PullError> {
        let continued = matches!(self, Start::Continue(..));
        let (Start::Continue(state, _) | Start::Relay(state, _)) = self else {
            return Ok(None);
        };
        reporter.note(&format!(
            "resuming the pull started {} ago in {}",
            human_age(state.age().as_secs()),
            work.path().display()
        ));
        // A re-lay still needs its state: the earlier layout's files are moved by it.
        let plan = if continued {
            state.take_plan()
        } else {
            state.plan()
        };
        let plan = plan.map_err(|reason| {
            WorkError::Io(FileError::other(
                "cannot use the state of",
                work.path(),
                reason,
            ))
        })?;
        Ok(Some(plan))
    }

    /// What this run keeps of an earlier one where it lies: its progress, when it continues.
    pub fn kept(&self) -> Option<&Progress> {
        match self {
            Start::Continue(_, progress) => Some(progress),
            _ => None,
        }
    }

    /// The state file this run writes: a new one for a fresh start (the work directory cleared
    /// of the earlier run first), the earlier one with the new layout for a re-lay, none when
    /// it continues.
    pub fn new_state<'a>(
        &self,
        options: &PullOptions,
        work: &WorkDir,
        plan: &'a Plan,
    ) -> Result<Option<State<'a>>, PullError> {
        Ok(match self {
            Start::Fresh => {
                work.clear()?;
                Some(State::new(
                    &options.request_record,
                    options.chunk_size,
                    options.gost,
                    plan,
                ))
            }
            Start::Relay(state, _) => Some(State {
                chunk_size: options.chunk_size,
                gost: options.gost,
                ..state.clone()
            }),
            Start::Continue(..) => None,
        })
    }

    /// Begins this run: writes `new_state` (from [`Start::new_state`]) and starts its journal,
    /// or reopens the journal of the run it continues. A re-lay first moves the earlier
    /// layout's files into `previous/`, where their blobs are read from.
    pub fn begin(
        self,
        options: &PullOptions,
        work: &WorkDir,
        new_state: Option<&State>,
    ) -> Result<Begun, PullError> {
        let (journal, progress, resumed) = match self {
            Start::Fresh => (
                work.begin(new_state.expect("a new state"))?,
                Progress::default(),
                false,
            ),
            Start::Continue(_, progress) => (work.journal()?, progress, true),
            Start::Relay(state, progress) => {
                // Only files of the earlier run's own plan are moved: a journal line naming
                // another file of the bundle directory is not acted on.
                let planned = state.into_file_names();
                let published: Vec<String> = progress
                    .sealed
                    .keys()
                    .filter(|n| planned.contains(*n))
                    .cloned()
                    .collect();
                work.keep_as_previous(&options.dir, &published)?;
                (
                    work.begin(new_state.expect("a new state"))?,
                    Progress::default(),
                    true,
                )
            }
        };
        Ok(Begun {
            journal,
            progress,
            previous: previous_blobs(work),
            resumed,
        })
    }
}

/// Continue, re-lay or start over, and why.
fn decide(
    options: &PullOptions,
    work: &WorkDir,
    reporter: &dyn Reporter,
) -> Result<Start, PullError> {
    let Some(found) = work.state() else {
        return Ok(Start::Fresh);
    };
    let progress = work.progress();
    // The state keeps the request as the JSON text it was written as; so is this one compared.
    let asked = options.request_record.to_string();
    let reason = match &found {
        _ if options.no_resume => "--no-pull-resume was given".to_string(),
        Err(reason) => reason.clone(),
        Ok(state) if state.request.get() != asked => {
            "the unfinished pull in the work directory asked for something else (source, \
             layout, versions, modules or components differ)"
                .into()
        }
        Ok(state) if state.age() > RESUME_WINDOW => format!(
            "the unfinished pull in the work directory started {} ago (over 24 h)",
            human_age(state.age().as_secs())
        ),
        Ok(state) if state.chunk_size == options.chunk_size && state.gost == options.gost => {
            return Ok(Start::Continue(state.clone(), progress));
        }
        Ok(state) => {
            reporter.note(
                "the chunk size or the GOST setting changed: finished blobs are copied into \
                 the new layout, not fetched again",
            );
            return Ok(Start::Relay(state.clone(), progress));
        }
    };
    reporter.warn(&format!("starting over: {reason}"));
    if let Ok(state) = &found {
        discard(options, work, state, &progress)?;
    }
    Ok(Start::Fresh)
}

/// Removes what an abandoned run published in the bundle directory: files of a bundle that
/// will never be finished.
/// Only files of the abandoned run's own plan go: a journal line naming anything else is not
/// ferry's to act on.
fn discard(
    options: &PullOptions,
    work: &WorkDir,
    state: &State,
    progress: &Progress,
) -> Result<(), PullError> {
    let planned = state.file_names();
    for name in progress.sealed.keys().filter(|n| planned.contains(*n)) {
        remove_if_present(&options.dir.join(name))?;
        remove_if_present(&options.dir.join(gostsum_name(name)))?;
    }
    work.clear()?;
    Ok(())
}

/// Every file an earlier run sealed must still be there, whole: checked by size and SHA-256.
async fn check_sealed(
    options: &PullOptions,
    work: &WorkDir,
    progress: &Progress,
) -> Result<(), String> {
    let records: Vec<FileRecord> = progress.sealed.values().cloned().collect();
    let (dir, work_path) = (options.dir.clone(), work.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        for record in records {
            // Still under its temporary name: the run stopped between journal and rename.
            let temp = temp_name(&work_path.join(&record.name));
            let path = if temp.exists() {
                temp
            } else {
                dir.join(&record.name)
            };
            let sums = crate::bundle::sums::hash_file(&path, false, &|_| {})
                .map_err(|e| format!("a finished file cannot be read: {e}"))?;
            if sums.size != record.size || sums.sha256 != record.sha256 {
                return Err(format!("{} changed since it was finished", path.display()));
            }
        }
        Ok(())
    })
    .await
    .expect("hashing does not panic")
}

/// The blobs of the earlier layout kept in `previous/`, readable in place.
fn previous_blobs(work: &WorkDir) -> LocalBlobs {
    let mut blobs = LocalBlobs::new();
    let Some((state, progress)) = work.previous_run() else {
        return blobs;
    };
    let Ok(plan) = state.plan() else {
        return blobs;
    };
    let Ok(plans) = archive_plans(&plan, state.chunk_size) else {
        return blobs;
    };
    let dir = work.previous();
    for archive in &plans {
        for entry in &archive.entries {
            let EntryContent::Blob { digest, size } = &entry.content else {
                continue;
            };
            if !progress.done.contains(digest) || blobs.contains(digest) {
                continue;
            }
            blobs.insert(
                digest.clone(),
                placed(&dir, archive, entry.data_offset, *size),
            );
        }
    }
    blobs
}

/// The bytes `offset..offset + len` of an archive whose files are in `dir`.
fn placed(dir: &Path, archive: &ArchivePlan, offset: u64, len: u64) -> BlobSource {
    BlobSource::segments(
        archive
            .ranges(offset, len)
            .into_iter()
            .map(|r| FileSegment {
                path: dir.join(&archive.files[r.file].name).into(),
                offset: r.offset,
                len: r.len,
            })
            .collect(),
    )
}

/// An age for people: seconds, minutes or hours.
fn human_age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}
