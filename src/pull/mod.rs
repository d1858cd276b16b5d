//! `ferry pull`: resolve what to take, lay the archives out exactly, check the disks, fetch
//! every blob straight into its place, seal each file as soon as it is complete, then write the
//! sums and `bundle.json`. An interrupted pull leaves a work directory from which a rerun of the
//! same command continues.

mod dry_run;
mod fetch;
mod layout;
mod readable;
mod space;
mod work;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

pub use dry_run::{ArchiveEstimate, DryRun, DryRunJson, dry_run};
pub use layout::archive_plans;
pub use space::SpaceCheck;
pub use work::{RESUME_WINDOW, WORK_DIR_NAME, WorkError};

use crate::bundle::fill::{BlobJob, FillHooks, LocalBlobs, blob_jobs, fill};
use crate::bundle::metadata::{BUNDLE_FILE, GOSTSUMS, SHA256SUMS};
use crate::bundle::names::gostsum_name;
use crate::bundle::pack::existing_files;
use crate::bundle::writer::{SealHook, WriterOptions, remove_if_present, temp_name};
use crate::bundle::{
    ArchivePlan, ArchiveWriter, BaseRecord, BlobRecord, BundleError, BundleMetadata, EntryContent,
    FileRecord, ImageRecord,
};
use crate::digest::Digest;
use crate::imageset::charts::ChartError;
use crate::registry::{Mirrors, RegistryClient, RegistryError};
use crate::report::{Reporter, human_bytes, list_some};
use crate::segment::{BlobSource, FileSegment};
use crate::settings::PullSettings;
use crate::source::{SourceError, SourceRoot, resolve};
use fetch::SourceBlobs;
use space::{allocated, space_checks};
use work::{Journal, Progress, State, WorkDir, WorkPlace};

/// What can go wrong in a pull.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// Resolving what to take failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Talking to the source failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Writing the bundle failed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The work directory cannot be used.
    #[error(transparent)]
    Work(#[from] WorkError),
    /// A Helm chart cannot be fetched into the bundle.
    #[error(transparent)]
    Chart(Box<ChartError>),
    /// The selection matched nothing.
    #[error("nothing to take from {source_root}: {detail}")]
    Empty {
        /// The source.
        source_root: String,
        /// Which selection it was.
        detail: String,
    },
    /// The plan holds what a bundle reader would refuse.
    #[error(
        "the source has what a bundle cannot carry (verify and push would refuse it):\n  {}",
        problems.join("\n  ")
    )]
    Unreadable {
        /// One line per item, naming where it came from.
        problems: Vec<String>,
    },
    /// The plan's manifests together are more than a pull holds in memory.
    #[error(
        "the plan's {count} manifests are {} together, over the {} a pull holds in memory",
        human_bytes(*bytes),
        human_bytes(MANIFEST_BYTES_LIMIT)
    )]
    TooManyManifestBytes {
        /// Their bytes.
        bytes: u64,
        /// How many.
        count: usize,
    },
    /// `--strict`: selectors selected nothing.
    #[error(
        "--strict: {} selector(s) selected nothing: {}",
        selectors.len(),
        selectors.join("; ")
    )]
    Unselected {
        /// What each selector was and what it found.
        selectors: Vec<String>,
    },
    /// The bundle directory holds files of something else.
    #[error("{} is not empty (it holds {})", dir.display(), found.join(", "))]
    NotEmpty {
        /// The directory.
        dir: PathBuf,
        /// A few of the names found.
        found: Vec<String>,
    },
    /// `--force` into a directory holding archives this pull does not write.
    #[error(
        "{} holds archives this pull does not write ({}); bundle.json would not list them and \
         the bundle would not verify",
        dir.display(),
        list_some(names)
    )]
    ForeignArchives {
        /// The directory.
        dir: PathBuf,
        /// Their file names.
        names: Vec<String>,
    },
    /// The disks are too small for the bundle.
    #[error("not enough free space: {}", describe_space(.0))]
    NoSpace(Vec<SpaceCheck>),
    /// Some blobs could not be fetched.
    #[error(
        "{failed} blob(s) could not be fetched ({error}); {} tag(s) are incomplete: {}",
        images.len(),
        list_some(images)
    )]
    Incomplete {
        /// The first failure.
        error: Box<PullError>,
        /// How many blobs failed.
        failed: usize,
        /// The tags that lack a blob, as `path:tag`.
        images: Vec<String>,
    },
}

fn describe_space(checks: &[SpaceCheck]) -> String {
    checks
        .iter()
        .filter(|c| c.is_short())
        .map(|c| {
            format!(
                "{} has {} free, the pull needs {} there",
                c.dir.display(),
                human_bytes(c.free),
                human_bytes(c.needed)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl PullError {
    /// True for errors in what the user asked (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, PullError::Source(e) if e.is_usage())
    }

    /// True when a disk filled up somewhere underneath.
    pub fn is_disk_full(&self) -> bool {
        if let PullError::Incomplete { error, .. } = self {
            return error.is_disk_full();
        }
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = current {
            if let Some(io) = error.downcast_ref::<std::io::Error>()
                && (io.kind() == std::io::ErrorKind::StorageFull
                    || io.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error()))
            {
                return true;
            }
            current = error.source();
        }
        false
    }

    /// A one-line fix, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        if self.is_disk_full() {
            return Some(
                "the disk is full: free some space (or use --tmp-dir on a bigger disk) and run \
                 the same command again; what is finished is kept"
                    .into(),
            );
        }
        match self {
            PullError::Source(e) => e.hint(),
            PullError::Registry(e) => e.hint(),
            PullError::Bundle(e) => e.hint(),
            PullError::Work(WorkError::Busy(_)) => {
                Some("wait for the other pull to end, or give this one its own --tmp-dir".into())
            }
            PullError::Work(WorkError::Unsafe { .. }) => Some(
                "remove it (ferry makes its own work directory), or give the pull another \
                 --tmp-dir"
                    .into(),
            ),
            PullError::Work(_) => None,
            PullError::Unreadable { .. } => Some(
                "leave those items out (filters, image set entries), or fix them at the source"
                    .into(),
            ),
            PullError::TooManyManifestBytes { .. } => {
                Some("take less in one pull (filters, several image set files pulled apart)".into())
            }
            PullError::Unselected { .. } => Some(
                "fix the selectors (`--dry-run` shows what each one found), or leave --strict \
                 out to take what the others select"
                    .into(),
            ),
            PullError::Chart(e) => e.hint(),
            PullError::Empty { .. } => Some(
                "check the module filters and component flags; `--dry-run` shows the plan".into(),
            ),
            PullError::NotEmpty { .. } => Some(
                "pull into an empty directory, or add --force to replace the archives this \
                 pull writes (other files are left alone)"
                    .into(),
            ),
            PullError::ForeignArchives { .. } => Some(
                "move those files out of the bundle directory, or pull into another directory"
                    .into(),
            ),
            PullError::NoSpace(_) => Some(
                "free some space, put the work directory on another disk with --tmp-dir, or \
                 take less (--no-modules, -e NAME, --since-version)"
                    .into(),
            ),
            PullError::Incomplete { error, .. } => error.hint().or_else(|| {
                Some(
                    "run the same command again: finished blobs are kept and only the rest is \
                     fetched"
                        .into(),
                )
            }),
        }
    }
}

/// The most manifest bytes one pull plans (real images' manifests are a few kB each).
const MANIFEST_BYTES_LIMIT: u64 = 128 << 20;

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullSummary {
    /// Tags in the bundle.
    pub tags: usize,
    /// Distinct blobs (manifests excluded).
    pub blobs: usize,
    /// Bytes fetched from the source in this run.
    pub downloaded: u64,
    /// Bytes kept from an interrupted run (re-checked, not fetched again).
    pub reused: u64,
    /// Blobs copied locally from an earlier layout (a changed chunk size).
    pub relaid: usize,
    /// Archive files written.
    pub files: usize,
    /// Bytes of the bundle.
    pub bundle_bytes: u64,
    /// Seconds the pull took.
    pub seconds: f64,
    /// Whether an interrupted pull was continued.
    pub resumed: bool,
    /// For a differential bundle: the base, with the blobs left out.
    pub base: Option<BaseRecord>,
    /// For a differential bundle: the bytes a full bundle of the same tags would have.
    pub full_bytes: u64,
}

/// How this run relates to an earlier one in the same work directory.
enum Start {
    /// Nothing to continue.
    Fresh,
    /// The same request: continue it, with the files laid out as they are.
    Continue(State, Progress),
    /// The same request with another chunk size or GOST setting: the finished blobs are copied
    /// into the new layout.
    Relay(State, Progress),
}

/// Runs a pull as `settings` says. A run that fails before anything worth resuming was
/// written leaves no directories behind.
pub async fn pull(
    settings: &PullSettings,
    reporter: Arc<dyn Reporter>,
) -> Result<PullSummary, PullError> {
    let existed = settings.dir.exists();
    let place = work_place(settings);
    let work_dir = place.anchor.join(&place.below);
    if lexical(&settings.dir).starts_with(&work_dir) {
        // The work directory is cleaned when the pull ends: the bundle cannot live in it.
        return Err(PullError::Work(WorkError::Unsafe {
            path: work_dir,
            reason: "the bundle directory is the work directory or inside it",
        }));
    }
    check_bundle_dir(settings)?;
    let result = run(settings, reporter).await;
    if result.is_err() {
        // Only empty directories go: a state file or any archive file keeps them.
        work::remove_if_empty(&work_place(settings));
        if !existed {
            let _ = std::fs::remove_dir(&settings.dir);
        }
    }
    result
}

async fn run(
    settings: &PullSettings,
    reporter: Arc<dyn Reporter>,
) -> Result<PullSummary, PullError> {
    let started = Instant::now();
    std::fs::create_dir_all(&settings.dir).map_err(crate::bundle::io_error(
        "cannot create the bundle directory",
        &settings.dir,
    ))?;
    let work = WorkDir::lock(&work_place(settings))?;

    let mut start = earlier_run(settings, &work, reporter.as_ref())?;
    if let Start::Continue(state, progress) = &start
        && let Err(reason) = check_sealed(settings, &work, progress).await
    {
        reporter.warn(&format!("starting over: {reason}"));
        discard(settings, &work, state, progress)?;
        start = Start::Fresh;
    }
    let plan = match &start {
        Start::Continue(state, _) | Start::Relay(state, _) => {
            reporter.note(&format!(
                "resuming the pull started {} ago in {}",
                human_age(state.age().as_secs()),
                work.path().display()
            ));
            state.plan().map_err(|reason| WorkError::Io {
                action: "cannot use the state of",
                path: work.path().to_path_buf(),
                source: std::io::Error::other(reason),
            })?
        }
        Start::Fresh => resolve_plan(settings, reporter.as_ref()).await?,
    };
    for warning in &plan.warnings {
        reporter.warn(warning);
    }
    for line in &plan.mirrors {
        reporter.note(line);
    }
    if plan.images.is_empty() {
        return Err(PullError::Empty {
            source_root: source_name(settings),
            detail: describe_selection(settings),
        });
    }
    let plans = archive_plans(&plan, settings.chunk_size)?;

    if settings.force {
        // Archives of another bundle beside this one would make it fail verify (bundle.json
        // does not list them); they are the user's, so they are named, not removed.
        let ours: HashSet<&str> = plans.iter().map(|p| p.name.as_str()).collect();
        let foreign = foreign_archives(&settings.dir, &ours)?;
        if !foreign.is_empty() {
            return Err(PullError::ForeignArchives {
                dir: settings.dir.clone(),
                names: foreign,
            });
        }
        // Old sums must never describe new files: they go before the first new file appears.
        for stale in [BUNDLE_FILE, SHA256SUMS, GOSTSUMS] {
            remove_if_present(&settings.dir.join(stale))?;
        }
    }

    // What this run writes: a new state file unless it continues, and every file not sealed.
    let sealed: HashMap<String, FileRecord> = match &start {
        Start::Continue(_, progress) => progress.sealed.clone(),
        _ => HashMap::new(),
    };
    let new_state = match &start {
        Start::Fresh => {
            work.clear()?;
            Some(State::new(
                &settings.request_record,
                settings.chunk_size,
                settings.gost,
                &plan,
            ))
        }
        Start::Relay(state, _) => Some(State {
            chunk_size: settings.chunk_size,
            gost: settings.gost,
            ..state.clone()
        }),
        Start::Continue(..) => None,
    };

    // Pre-flight: what is still to be written, where it is written, before the first byte.
    let unsealed: Vec<(&str, u64)> = plans
        .iter()
        .flat_map(|p| &p.files)
        .filter(|f| !sealed.contains_key(&f.name))
        .map(|f| (f.name.as_str(), f.size))
        .collect();
    let remaining: u64 = unsealed.iter().map(|(_, size)| size).sum();
    let in_place: u64 = match &start {
        Start::Continue(..) => unsealed
            .iter()
            .map(|(name, _)| allocated(&temp_name(&work.path().join(name))))
            .sum(),
        _ => 0,
    };
    let entries: u64 = plans.iter().map(|p| p.entries.len() as u64).sum();
    let state_size = new_state.as_ref().map_or(0, State::estimated_size);
    let journal_room = (64 << 10) + 160 * entries + state_size;
    let checks = space_checks(
        &settings.dir,
        work.path(),
        (remaining + journal_room).saturating_sub(in_place),
        remaining,
    );
    if checks.iter().any(SpaceCheck::is_short) {
        return Err(PullError::NoSpace(checks));
    }

    let (journal, progress, resumed) = match start {
        Start::Fresh => (
            work.begin(new_state.as_ref().expect("a new state"))?,
            Progress::default(),
            false,
        ),
        Start::Continue(_, progress) => (work.journal()?, progress, true),
        Start::Relay(state, progress) => {
            // Only files of the earlier run's own plan are moved: a journal line naming another
            // file of the bundle directory is not acted on.
            let planned = state.file_names();
            let published: Vec<String> = progress
                .sealed
                .keys()
                .filter(|n| planned.contains(*n))
                .cloned()
                .collect();
            work.keep_as_previous(&settings.dir, &published)?;
            (
                work.begin(new_state.as_ref().expect("a new state"))?,
                Progress::default(),
                true,
            )
        }
    };
    let previous = previous_blobs(&work);
    let journal = Arc::new(journal);

    let on_sealed: SealHook = {
        let journal = journal.clone();
        Arc::new(move |_archive: &str, record: &FileRecord| journal.sealed(record))
    };
    let writer = {
        let (dir, work_path, gost) = (
            settings.dir.clone(),
            work.path().to_path_buf(),
            settings.gost,
        );
        let sealed = sealed.clone();
        tokio::task::spawn_blocking(move || {
            ArchiveWriter::open(
                &dir,
                &work_path,
                plans,
                WriterOptions {
                    gost,
                    sealed,
                    on_sealed: Some(on_sealed),
                },
            )
        })
        .await
        .expect("opening the archives does not panic")?
    };

    // Blobs a resumed run already has are re-checked where they lie, not fetched again.
    let mut jobs = Vec::new();
    let mut reused = 0;
    for mut job in blob_jobs(writer.plans()) {
        if progress.done.contains(&job.digest) && all_intact(&writer, &job).await? {
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
    let blobs = writer.plans().iter().flat_map(|p| p.blobs()).count();
    let clients = clients_of(settings, &plan)?;
    let source = SourceBlobs::new(clients, &settings.chart_options(), &plan, previous)?;
    let relaid = jobs.iter().filter(|j| source.is_local(&j.digest)).count();
    let to_fetch: u64 = jobs.iter().fold(0, |sum, j| sum.saturating_add(j.size));

    writer.start_sealing();
    reporter.begin(
        &format!("pulling into {}", settings.dir.display()),
        jobs.len() as u64,
        to_fetch,
    );
    let hooks = journal_hooks(&journal);
    let report = fill(
        &writer,
        &source,
        jobs,
        settings.concurrency,
        &hooks,
        &reporter,
    )
    .await;
    if let Some((_, first)) = report.failures.into_iter().next() {
        writer.stop();
        let missing: HashSet<&Digest> = report.unfinished.iter().collect();
        let images: Vec<String> = plan
            .images
            .iter()
            .filter(|i| i.parts.keys().any(|d| missing.contains(d)))
            .map(|i| format!("{}:{}", display_path(&i.path), i.tag))
            .collect();
        return Err(PullError::Incomplete {
            error: Box::new(first),
            failed: missing.len(),
            images,
        });
    }
    let records = tokio::task::spawn_blocking(move || writer.finish())
        .await
        .expect("sealing does not panic")?;
    reporter.finish(&format!(
        "{} blobs fetched ({}), {} copied within the bundle",
        report.fetched,
        human_bytes(report.fetched_bytes),
        report.copies
    ));

    // Stale chunks of an earlier, differently cut bundle go; then the sums and bundle.json.
    let fresh: HashSet<&str> = records
        .iter()
        .flat_map(|r| &r.files)
        .map(|f| f.name.as_str())
        .collect();
    for record in &records {
        for old in existing_files(&settings.dir, &record.name)? {
            if !fresh.contains(old.as_str()) {
                remove_if_present(&settings.dir.join(&old))?;
                remove_if_present(&settings.dir.join(gostsum_name(&old)))?;
            }
        }
    }
    let images: Vec<ImageRecord> = dry_run::image_records(&plan);
    let base = settings.since_bundle.as_ref().map(|b| BaseRecord {
        left_out: BlobRecord::list(&plan.left_out),
        ..b.record.clone()
    });
    let full_bytes = match &base {
        Some(_) => full_size(&plan)?,
        None => 0,
    };
    let summary = PullSummary {
        tags: images.len(),
        blobs,
        downloaded: report.fetched_bytes,
        reused,
        relaid,
        files: records.iter().map(|r| r.files.len()).sum(),
        bundle_bytes: records.iter().map(|r| r.size()).sum(),
        seconds: started.elapsed().as_secs_f64(),
        resumed,
        base: base.clone(),
        full_bytes,
    };
    BundleMetadata {
        base,
        ..BundleMetadata::new(
            source_name(settings),
            settings.request_record.clone(),
            records,
            images,
        )
    }
    .seal(&settings.dir)?;
    drop(journal);
    work.remove()?;
    if settings.tmp_dir == settings.dir.join(".tmp") {
        // The default work place is ferry's own; leave nothing behind.
        let _ = std::fs::remove_dir(&settings.tmp_dir);
    }
    Ok(PullSummary {
        seconds: started.elapsed().as_secs_f64(),
        ..summary
    })
}

/// Where the work directory lies: ferry's own `.tmp/ferry-pull` under the bundle directory,
/// or `ferry-pull` under the `--tmp-dir` the user gave.
/// A `--tmp-dir` inside the bundle directory, however spelled, is ferry's own below the
/// bundle directory: no link is followed there either.
fn work_place(settings: &PullSettings) -> WorkPlace {
    let dir = lexical(&settings.dir);
    let tmp = lexical(&settings.tmp_dir);
    match tmp.strip_prefix(&dir) {
        Ok(inside) => WorkPlace {
            anchor: dir.clone(),
            below: inside.join(WORK_DIR_NAME),
        },
        Err(_) => WorkPlace {
            anchor: tmp,
            below: PathBuf::from(WORK_DIR_NAME),
        },
    }
}

/// Archive files in `dir` (whole or chunks) of archives not in `ours`.
fn foreign_archives(dir: &Path, ours: &HashSet<&str>) -> Result<Vec<String>, PullError> {
    use crate::bundle::names::{ArchiveFileName, parse_archive_file};
    let listing = std::fs::read_dir(dir).map_err(crate::bundle::io_error("cannot list", dir))?;
    let mut names = Vec::new();
    for item in listing {
        let item = item.map_err(crate::bundle::io_error("cannot list", dir))?;
        let name = item.file_name().to_string_lossy().into_owned();
        let archive = match parse_archive_file(&name) {
            Some(ArchiveFileName::Whole(archive) | ArchiveFileName::Chunk(archive, _)) => archive,
            None => continue,
        };
        if !ours.contains(archive.as_str()) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// `path` made absolute and with `.` and `..` resolved by name alone (no link is followed).
fn lexical(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// What the archives of `plan` would weigh with nothing left out.
pub(crate) fn full_size(plan: &crate::source::Plan) -> Result<u64, PullError> {
    let full = crate::source::Plan {
        left_out: Default::default(),
        ..plan.clone()
    };
    Ok(archive_plans(&full, 0)?.iter().map(|a| a.size).sum())
}

/// What the pull takes: the platform layout's plan (with `--source`), then every image set and
/// the image list, merged.
pub(crate) async fn resolve_plan(
    settings: &PullSettings,
    reporter: &dyn Reporter,
) -> Result<crate::source::Plan, PullError> {
    let mut plan = match &settings.source {
        Some(source) => {
            let (read, via) = read_root(&settings.mirrors, source)?;
            let client = RegistryClient::new(
                &read.registry,
                &read.path,
                settings.client_options(&read.registry),
            )?;
            let mut plan = resolve(
                &client,
                &read,
                &settings.description,
                &settings.request,
                settings.concurrency,
                reporter,
            )
            .await?;
            if let Some(via) = via {
                plan.name_as_asked(&read.registry, &read.path, &source.to_string());
                plan.mirrors
                    .insert(format!("{source}: read through the {via}"));
            }
            plan
        }
        None => crate::source::Plan::default(),
    };
    if !settings.image_sets.is_empty() || !settings.image_list.is_empty() {
        let sets = crate::imageset::resolve(
            &settings.image_sets,
            &settings.image_list,
            &SettingsClients(settings),
            &settings.chart_options(),
            &settings.request.take,
            settings.concurrency,
            reporter,
        )
        .await?;
        plan.merge(sets)
            .map_err(|e| PullError::Source(SourceError::Usage(e)))?;
    }
    if let Some(base) = &settings.since_bundle {
        plan.leave_out(&base.held);
    }
    let problems = readable::unreadable(&plan);
    if !problems.is_empty() {
        return Err(PullError::Unreadable { problems });
    }
    // Manifests are held in memory from the plan to the seal (and written to the state file):
    // a source of thousands of 4 MiB manifests must not take the host's memory with it.
    let manifest_bytes: u64 = plan.manifests.values().map(|m| m.bytes.len() as u64).sum();
    if manifest_bytes > MANIFEST_BYTES_LIMIT {
        return Err(PullError::TooManyManifestBytes {
            bytes: manifest_bytes,
            count: plan.manifests.len(),
        });
    }
    if settings.strict && !plan.unselected.is_empty() {
        return Err(PullError::Unselected {
            selectors: plan.unselected,
        });
    }
    Ok(plan)
}

/// Where the platform layout under `root` is read: the first source its mirror rule gives,
/// with what stands in for it. The whole layout comes from there, without falling back to
/// another source image by image: channels, versions and digest lists must come from one
/// registry to fit together.
fn read_root(
    mirrors: &Mirrors,
    root: &SourceRoot,
) -> Result<(SourceRoot, Option<String>), PullError> {
    let first = mirrors
        .sources(&root.to_string())
        .map_err(SourceError::from)?
        .into_iter()
        .next()
        .expect("a rule gives at least one source");
    Ok((
        SourceRoot {
            registry: first.registry,
            path: first.repository,
        },
        first.via,
    ))
}

/// Registry clients made from the pull's settings.
struct SettingsClients<'a>(&'a PullSettings);

impl crate::imageset::Clients for SettingsClients<'_> {
    fn client(&self, registry: &str) -> Result<RegistryClient, RegistryError> {
        RegistryClient::new(registry, "", self.0.client_options(registry))
    }

    fn mirrors(&self) -> &Mirrors {
        &self.0.mirrors
    }
}

/// A client for every registry the plan reads blobs from.
fn clients_of(
    settings: &PullSettings,
    plan: &crate::source::Plan,
) -> Result<HashMap<String, RegistryClient>, PullError> {
    let mut clients = HashMap::new();
    for image in &plan.images {
        if image.registry.is_empty() || clients.contains_key(&image.registry) {
            continue;
        }
        let client = RegistryClient::new(
            &image.registry,
            &image.repository,
            settings.client_options(&image.registry),
        )?;
        clients.insert(image.registry.clone(), client);
    }
    Ok(clients)
}

/// How the bundle names where it came from: the source root, else the image set files.
pub fn source_name(settings: &PullSettings) -> String {
    match &settings.source {
        Some(source) => source.to_string(),
        None => {
            let mut names: Vec<String> = settings
                .image_sets
                .iter()
                .map(|s| s.file.display().to_string())
                .collect();
            if !settings.image_list.is_empty() {
                names.push("an image list".into());
            }
            names.join(", ")
        }
    }
}

/// Decides what to do with what an earlier run left in the work directory.
fn earlier_run(
    settings: &PullSettings,
    work: &WorkDir,
    reporter: &dyn Reporter,
) -> Result<Start, PullError> {
    let Some(found) = work.state() else {
        return Ok(Start::Fresh);
    };
    let progress = work.progress();
    // The state keeps the request as the JSON text it was written as; so is this one compared.
    let asked = settings.request_record.to_string();
    let reason = match &found {
        _ if settings.no_resume => "--no-pull-resume was given".to_string(),
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
        Ok(state) if state.chunk_size == settings.chunk_size && state.gost == settings.gost => {
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
        discard(settings, work, state, &progress)?;
    }
    Ok(Start::Fresh)
}

/// Removes what an abandoned run published in the bundle directory: files of a bundle that
/// will never be finished.
/// Only files of the abandoned run's own plan go: a journal line naming anything else is not
/// ferry's to act on.
fn discard(
    settings: &PullSettings,
    work: &WorkDir,
    state: &State,
    progress: &Progress,
) -> Result<(), PullError> {
    let planned = state.file_names();
    for name in progress.sealed.keys().filter(|n| planned.contains(*n)) {
        remove_if_present(&settings.dir.join(name))?;
        remove_if_present(&settings.dir.join(gostsum_name(name)))?;
    }
    work.clear()?;
    Ok(())
}

/// Every file an earlier run sealed must still be there, whole: checked by size and SHA-256.
async fn check_sealed(
    settings: &PullSettings,
    work: &WorkDir,
    progress: &Progress,
) -> Result<(), String> {
    let records: Vec<FileRecord> = progress.sealed.values().cloned().collect();
    let (dir, work_path) = (settings.dir.clone(), work.path().to_path_buf());
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

/// The bundle directory must hold nothing but the work directory and what an unfinished run
/// of this pull published, unless `--force`. Checked before anything is created.
fn check_bundle_dir(settings: &PullSettings) -> Result<(), PullError> {
    let dir = &settings.dir;
    if settings.force || !dir.exists() {
        return Ok(());
    }
    let tmp_name = settings
        .tmp_dir
        .strip_prefix(dir)
        .ok()
        .and_then(|rest| rest.components().next())
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    // A run stopped while publishing a file may leave its temporary copies beside it.
    let suffix = crate::bundle::writer::TEMP_SUFFIX;
    let ours: HashSet<String> = work::sealed_names(&work_place(settings))
        .into_iter()
        .flat_map(|name| {
            let sum = gostsum_name(&name);
            [
                format!("{name}{suffix}"),
                format!("{sum}{suffix}"),
                sum,
                name,
            ]
        })
        .collect();
    let listing = std::fs::read_dir(dir).map_err(crate::bundle::io_error("cannot list", dir))?;
    let mut found = BTreeSet::new();
    for item in listing {
        let item = item.map_err(crate::bundle::io_error("cannot list", dir))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if Some(&name) != tmp_name.as_ref() && !ours.contains(&name) {
            found.insert(name);
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    Err(PullError::NotEmpty {
        dir: dir.clone(),
        found: found.into_iter().take(5).collect(),
    })
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
                path: dir.join(&archive.files[r.file].name),
                offset: r.offset,
                len: r.len,
            })
            .collect(),
    )
}

async fn all_intact(writer: &ArchiveWriter, job: &BlobJob) -> Result<bool, PullError> {
    for (a, e) in &job.placements {
        if !writer.entry_is_intact(*a, *e).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

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

fn describe_selection(settings: &PullSettings) -> String {
    let request = &settings.request;
    let mut parts = Vec::new();
    if request.platform {
        parts.push("the platform".to_string());
    }
    if request.modules {
        let filters: Vec<String> = request.include.iter().map(|f| f.to_string()).collect();
        parts.push(if filters.is_empty() {
            "modules".into()
        } else {
            format!("modules {}", filters.join(", "))
        });
    }
    if request.security {
        parts.push("the security databases".into());
    }
    if !settings.image_sets.is_empty() || !settings.image_list.is_empty() {
        parts.push("the image sets and lists".into());
    }
    if parts.is_empty() {
        "--no-platform, --no-modules and --no-security-db leave nothing to take".into()
    } else {
        format!(
            "{} matched no image (the warnings above say what is missing)",
            parts.join(", ")
        )
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "(root)" } else { path }
}

fn human_age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}
