//! The work directory of a pull: a lock, the state file (the request, when it was made, and
//! the resolved plan with every manifest), the journal of what is finished, and the archive
//! files in progress. It is what lets a rerun continue an interrupted pull instead of starting
//! over.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::bundle::names::parse_archive_file;
use crate::bundle::{BlobRecord, FileRecord};
use crate::digest::Digest;
use crate::manifest::Manifest;
use crate::source::{Plan, PlannedImage, WebBlob};
use crate::store::write_atomic_blocking;

/// The work directory's own name, under the temporary directory.
pub const WORK_DIR_NAME: &str = "ferry-pull";
const STATE_FILE: &str = "state.json";
const JOURNAL_FILE: &str = "journal";
const LOCK_FILE: &str = "lock";
/// Where the files of an earlier layout wait while their blobs are copied into a new one.
const PREVIOUS_DIR: &str = "previous";
/// Bumped when the state file changes shape; an older state is not resumed. 2: a chart's
/// `.tgz` is a web blob (URL, digest, size), no longer base64 bytes in `generated`.
const STATE_VERSION: u32 = 2;
/// How long an unfinished pull stays resumable.
pub const RESUME_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// A state file larger than this is not read (every manifest of the plan is in it).
const STATE_LIMIT: u64 = 512 << 20;
/// A journal larger than this is not read (a line per blob and per 16 MiB written).
const JOURNAL_LIMIT: u64 = 64 << 20;
/// The longest journal line ferry writes (`sealed`, a file name, a size, two sums).
const JOURNAL_LINE_LIMIT: usize = 1024;
/// How the temporary files of an atomic state write begin.
const STATE_TEMP_PREFIX: &str = ".ferry-tmp-";

/// The state file: what was asked, when, and what it resolved to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// The request, as pull compares it: kept as the JSON text it was written as (a planted
    /// state's request is compared, never expanded into a value tree).
    pub request: Box<serde_json::value::RawValue>,
    /// When the pull started, in seconds since the epoch.
    pub created: u64,
    /// The chunk size the files are laid out with.
    pub chunk_size: u64,
    /// Whether the files get Streebog sums.
    pub gost: bool,
    /// Every tag of the plan.
    pub images: Vec<PlannedImage>,
    /// The plan's warnings, repeated on a resumed run.
    pub warnings: Vec<String>,
    /// Every manifest of the plan.
    pub manifests: Vec<StoredManifest>,
    /// Small blobs the plan made rather than fetched (Helm chart configs), base64.
    #[serde(default)]
    pub generated: Vec<String>,
    /// Blobs fetched from a URL (Helm charts' `.tgz`): where each is; its size is in `images`.
    #[serde(default)]
    pub web_blobs: BTreeMap<Digest, WebBlob>,
    /// Blobs left out against an earlier bundle.
    #[serde(default)]
    pub left_out: Vec<BlobRecord>,
}

/// A manifest in the state file: its bytes, exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredManifest {
    /// Its media type.
    pub media_type: String,
    /// Its bytes, base64.
    pub bytes: String,
}

impl State {
    /// A state for a new pull of `plan`.
    pub fn new(request: &serde_json::Value, chunk_size: u64, gost: bool, plan: &Plan) -> State {
        State {
            version: STATE_VERSION,
            request: serde_json::value::to_raw_value(request).expect("a request serialises"),
            created: now(),
            chunk_size,
            gost,
            images: plan.images.clone(),
            warnings: plan.warnings.clone(),
            manifests: plan
                .manifests
                .values()
                .map(|m| StoredManifest {
                    media_type: m.media_type.clone(),
                    bytes: base64::engine::general_purpose::STANDARD.encode(&m.bytes),
                })
                .collect(),
            generated: plan
                .generated
                .values()
                .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
                .collect(),
            web_blobs: plan.web_blobs.clone(),
            left_out: BlobRecord::list(&plan.left_out),
        }
    }

    /// The plan back, every manifest re-checked against its digest.
    pub fn plan(&self) -> Result<Plan, String> {
        let mut manifests = BTreeMap::new();
        for stored in &self.manifests {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&stored.bytes)
                .map_err(|e| format!("a manifest is not base64: {e}"))?;
            let manifest =
                Manifest::from_bytes(bytes, Some(&stored.media_type)).map_err(|e| e.to_string())?;
            manifests.insert(manifest.digest.clone(), manifest);
        }
        for image in &self.images {
            if !manifests.contains_key(&image.digest) {
                return Err(format!("the manifest of {} is missing", image.source));
            }
        }
        let mut generated = BTreeMap::new();
        for stored in &self.generated {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(stored)
                .map_err(|e| format!("a blob is not base64: {e}"))?;
            generated.insert(Digest::of(&bytes), bytes);
        }
        Ok(Plan {
            images: self.images.clone(),
            warnings: self.warnings.clone(),
            manifests,
            generated,
            web_blobs: self.web_blobs.clone(),
            notes: Vec::new(),
            // A resumed pull continues what was planned; --strict judged it when it was made.
            unselected: Vec::new(),
            left_out: self
                .left_out
                .iter()
                .map(|b| (b.digest.clone(), b.size))
                .collect(),
            mirrors: Default::default(),
        })
    }

    /// The names of the archive files its plan lays out; empty when the plan cannot be read.
    pub fn file_names(&self) -> HashSet<String> {
        self.plan()
            .ok()
            .and_then(|plan| super::layout::archive_plans(&plan, self.chunk_size).ok())
            .into_iter()
            .flatten()
            .flat_map(|archive| archive.files)
            .map(|file| file.name)
            .collect()
    }

    /// About the bytes its file takes, without writing it out twice to find out.
    pub fn estimated_size(&self) -> u64 {
        let manifests: usize = self.manifests.iter().map(|m| m.bytes.len() + 128).sum();
        let generated: usize = self.generated.iter().map(|g| g.len() + 8).sum();
        (manifests + generated + 1024 * self.images.len() + 64 * self.left_out.len()) as u64
    }

    /// How long ago the pull started.
    pub fn age(&self) -> Duration {
        Duration::from_secs(now().saturating_sub(self.created))
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the journal says is finished.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Blobs in place everywhere they go.
    pub done: HashSet<Digest>,
    /// Blobs cut off mid-way: how many bytes of each are at its first place.
    pub at: HashMap<Digest, u64>,
    /// Files sealed (hashed, synced, renamed into the bundle directory), by name.
    pub sealed: HashMap<String, FileRecord>,
}

/// The append-only journal: one line per event, `done <digest>`, `at <digest> <offset>`,
/// `sealed <file> <size> <sha256> <gost or ->`. A line cut by a crash is ignored.
pub struct Journal {
    file: Mutex<File>,
}

impl Journal {
    fn append(&self, line: &str, sync: bool) -> std::io::Result<()> {
        let mut file = self.file.lock().expect("journal lock");
        file.write_all(line.as_bytes())?;
        if sync {
            file.sync_data()?;
        }
        Ok(())
    }

    /// A blob is in place everywhere.
    pub fn done(&self, digest: &Digest) -> std::io::Result<()> {
        self.append(&format!("done {digest}\n"), false)
    }

    /// A blob being written has reached `offset` (synced: this is where a resume starts).
    pub fn at(&self, digest: &Digest, offset: u64) -> std::io::Result<()> {
        self.append(&format!("at {digest} {offset}\n"), true)
    }

    /// A file is about to be renamed into the bundle directory (synced first).
    pub fn sealed(&self, record: &FileRecord) -> std::io::Result<()> {
        let gost = record.gost.as_deref().unwrap_or("-");
        self.append(
            &format!(
                "sealed {} {} {} {gost}\n",
                record.name, record.size, record.sha256
            ),
            true,
        )
    }
}

fn read_progress(path: &Path) -> Progress {
    let mut progress = Progress::default();
    let Ok(Some(bytes)) = crate::small_file::read_small(path, JOURNAL_LIMIT) else {
        return progress;
    };
    for line in bytes.split(|&b| b == b'\n') {
        // No line ferry writes is longer: anything else is not a journal line.
        if line.len() > JOURNAL_LINE_LIMIT {
            continue;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let words: Vec<&str> = line.splitn(6, ' ').collect();
        match words.as_slice() {
            ["done", digest] => {
                if let Ok(digest) = digest.parse::<Digest>() {
                    progress.at.remove(&digest);
                    progress.done.insert(digest);
                }
            }
            ["at", digest, offset] => {
                if let (Ok(digest), Ok(offset)) = (digest.parse::<Digest>(), offset.parse()) {
                    progress.at.insert(digest, offset);
                }
            }
            // Only a plain archive file name: the names are removed or moved on a restart.
            ["sealed", name, size, sha256, gost] if is_archive_file(name) => {
                if let Ok(size) = size.parse() {
                    progress.sealed.insert(
                        name.to_string(),
                        FileRecord {
                            name: name.to_string(),
                            size,
                            sha256: sha256.to_string(),
                            gost: (*gost != "-").then(|| gost.to_string()),
                        },
                    );
                }
            }
            _ => {}
        }
    }
    progress
}

/// True for a plain archive file name (`x.tar`, `x.tar.0001.chunk`): no directory part, so
/// joined to the bundle directory it names a file in it and nowhere else.
fn is_archive_file(name: &str) -> bool {
    !name.contains('/') && !name.contains('\0') && parse_archive_file(name).is_some()
}

/// `O_NOFOLLOW`: a link planted where ferry keeps its own files is refused, not followed.
const NOFOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;

/// Where a work directory lies: `below` (ferry's own directories, e.g. `.tmp/ferry-pull`)
/// under `anchor` (a directory the user chose: the bundle directory or `--tmp-dir`). The
/// anchor may be anything the user likes, a link included; nothing below it may be a link.
#[derive(Debug, Clone)]
pub struct WorkPlace {
    /// The user's directory.
    pub anchor: PathBuf,
    /// Ferry's directories under it, relative.
    pub below: PathBuf,
}

impl WorkPlace {
    /// The work directory, when it is there and safe to use (every directory below the anchor
    /// real and this user's); `None` when it is not there or not safe.
    pub fn existing(&self) -> Option<PathBuf> {
        let mut path = self.anchor.clone();
        for part in self.below.components() {
            path.push(part);
            if check_own_dir(&path).ok()? {
                return None;
            }
        }
        Some(path)
    }

    /// Creates what is missing of the work directory, each directory below the anchor checked
    /// without following links.
    fn make(&self) -> Result<PathBuf, WorkError> {
        std::fs::create_dir_all(&self.anchor).map_err(io("cannot create", &self.anchor))?;
        let mut path = self.anchor.clone();
        for part in self.below.components() {
            path.push(part);
            if check_own_dir(&path)? {
                match std::fs::create_dir(&path) {
                    Ok(()) => {}
                    // Made by a concurrent pull: checked below like any other.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io("cannot create", &path)(e)),
                }
                if check_own_dir(&path)? {
                    return Err(unsafe_dir(&path, "it vanished while being created"));
                }
            }
        }
        Ok(path)
    }
}

/// Checks, without following links, that `path` is a real directory of this user: `Ok(true)`
/// when it is missing, `Ok(false)` when it is fine.
fn check_own_dir(path: &Path) -> Result<bool, WorkError> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(io("cannot inspect", path)(e)),
    };
    if meta.file_type().is_symlink() {
        return Err(unsafe_dir(path, "it is a symbolic link"));
    }
    if !meta.is_dir() {
        return Err(unsafe_dir(path, "it is not a directory"));
    }
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(unsafe_dir(path, "another user owns it"));
    }
    Ok(false)
}

fn unsafe_dir(path: &Path, reason: &'static str) -> WorkError {
    WorkError::Unsafe {
        path: path.to_path_buf(),
        reason,
    }
}

/// Names of the files an unfinished pull in `place` published (read without the lock: only
/// to tell its files from foreign ones). Empty when there is no usable work directory.
/// Only names of the state's own plan count: a journal cannot claim a file its plan lacks.
pub fn sealed_names(place: &WorkPlace) -> Vec<String> {
    let Some(dir) = place.existing() else {
        return Vec::new();
    };
    let Some(Ok(state)) = read_state(&dir) else {
        return Vec::new();
    };
    let planned = state.file_names();
    read_progress(&dir.join(JOURNAL_FILE))
        .sealed
        .into_keys()
        .filter(|name| planned.contains(name))
        .collect()
}

/// Why a work directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    /// Another pull holds the lock.
    #[error("another ferry pull is using the work directory {}", .0.display())]
    Busy(PathBuf),
    /// Something other than ferry's own directory is where the work directory goes.
    #[error("cannot use {} as the pull's work directory: {reason}", path.display())]
    Unsafe {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A file operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> WorkError {
    let path = path.to_path_buf();
    move |source| WorkError::Io {
        action,
        path,
        source,
    }
}

/// A locked work directory.
pub struct WorkDir {
    path: PathBuf,
    _lock: File,
}

impl WorkDir {
    /// Creates and locks the work directory of `place`; a second pull using it at the same
    /// time is refused, and so is a link or a foreign directory where it goes.
    pub fn lock(place: &WorkPlace) -> Result<WorkDir, WorkError> {
        let path = place.make()?;
        let lock_path = path.join(LOCK_FILE);
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(NOFOLLOW)
            .open(&lock_path)
            .map_err(io("cannot create", &lock_path))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .map_err(|_| WorkError::Busy(path.clone()))?;
        Ok(WorkDir { path, _lock: lock })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the files of an earlier layout wait during a re-lay.
    pub fn previous(&self) -> PathBuf {
        self.path.join(PREVIOUS_DIR)
    }

    /// The state of an earlier run, if there is one: `Err` says why it cannot be used.
    pub fn state(&self) -> Option<Result<State, String>> {
        read_state(&self.path)
    }

    /// What the journal says is finished.
    pub fn progress(&self) -> Progress {
        read_progress(&self.path.join(JOURNAL_FILE))
    }

    /// The state and progress of the earlier layout kept in `previous/`, if any.
    pub fn previous_run(&self) -> Option<(State, Progress)> {
        let dir = self.previous();
        if check_own_dir(&dir).ok()? {
            return None;
        }
        let state = read_state(&dir)?.ok()?;
        Some((state, read_progress(&dir.join(JOURNAL_FILE))))
    }

    /// Removes what ferry keeps here, but the lock: the start of a new pull. Only names ferry
    /// writes go (the state, the journal, archive files in progress, `previous/` with the
    /// same); anything else is left where it is.
    pub fn clear(&self) -> Result<(), WorkError> {
        clear_own_files(&self.path)?;
        let previous = self.previous();
        if check_own_dir(&previous)? {
            return Ok(());
        }
        clear_own_files(&previous)?;
        remove_own_file(&previous.join(LOCK_FILE))?;
        match std::fs::remove_dir(&previous) {
            // Something else is in there: not ferry's to remove.
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => Ok(()),
            other => other.map_err(io("cannot remove", &previous)),
        }
    }

    /// Moves the current run's state, journal and temporary files into `previous/` (replacing
    /// an older one there), so that a new layout can copy its blobs from them. Files listed in
    /// `sealed_in_bundle` are moved there from the bundle directory.
    pub fn keep_as_previous(
        &self,
        bundle_dir: &Path,
        sealed_in_bundle: &[String],
    ) -> Result<(), WorkError> {
        let previous = self.previous();
        if !check_own_dir(&previous)? {
            clear_own_files(&previous)?;
        } else {
            std::fs::create_dir(&previous).map_err(io("cannot create", &previous))?;
        }
        for name in own_files(&self.path)? {
            let target = previous.join(name.trim_end_matches(crate::bundle::writer::TEMP_SUFFIX));
            std::fs::rename(self.path.join(&name), &target).map_err(io("cannot move", &target))?;
        }
        for name in sealed_in_bundle.iter().filter(|n| is_archive_file(n)) {
            let from = bundle_dir.join(name);
            if from.exists() {
                crate::bundle::writer::move_file(&from, &previous.join(name)).map_err(|e| {
                    WorkError::Io {
                        action: "cannot move",
                        path: from.clone(),
                        source: std::io::Error::other(e.to_string()),
                    }
                })?;
            }
        }
        Ok(())
    }

    /// Writes the state file of a new run and starts its journal empty.
    pub fn begin(&self, state: &State) -> Result<Journal, WorkError> {
        let journal_path = self.path.join(JOURNAL_FILE);
        let _ = std::fs::remove_file(&journal_path);
        let bytes = serde_json::to_vec(state).expect("the state serialises");
        let state_path = self.path.join(STATE_FILE);
        write_atomic_blocking(&state_path, &bytes).map_err(|e| WorkError::Io {
            action: "cannot write",
            path: state_path,
            source: std::io::Error::other(e.to_string()),
        })?;
        self.journal()
    }

    /// The journal, opened for appending.
    pub fn journal(&self) -> Result<Journal, WorkError> {
        let path = self.path.join(JOURNAL_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(NOFOLLOW)
            .open(&path)
            .map_err(io("cannot open", &path))?;
        Ok(Journal {
            file: Mutex::new(file),
        })
    }

    /// Removes the work directory: the pull is sealed. Only ferry's own files go; a directory
    /// that still holds something else stays.
    pub fn remove(self) -> Result<(), WorkError> {
        self.clear()?;
        let path = self.path.clone();
        drop(self);
        remove_own_file(&path.join(LOCK_FILE))?;
        match std::fs::remove_dir(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => Ok(()),
            other => other.map_err(io("cannot remove", &path)),
        }
    }
}

/// Removes what a failed first run left of the work directory of `place`: its lock and the
/// directories, when nothing else is in them. Nothing is followed or removed when the place is
/// not ferry's own.
pub fn remove_if_empty(place: &WorkPlace) {
    let Some(dir) = place.existing() else {
        return;
    };
    let _ = std::fs::remove_file(dir.join(LOCK_FILE));
    let mut path = dir;
    for _ in place.below.components() {
        if std::fs::remove_dir(&path).is_err() {
            return;
        }
        path.pop();
    }
}

/// The names in `dir` that ferry writes there, but the lock: the state (and its temporary
/// files), the journal, archive files in progress (`*.tar.ferry-tmp`) and, in `previous/`,
/// archive files without that suffix.
fn own_files(dir: &Path) -> Result<Vec<String>, WorkError> {
    let listing = std::fs::read_dir(dir).map_err(io("cannot list", dir))?;
    let mut names = Vec::new();
    for item in listing {
        let item = item.map_err(io("cannot list", dir))?;
        let Ok(name) = item.file_name().into_string() else {
            continue;
        };
        let archive = name
            .strip_suffix(crate::bundle::writer::TEMP_SUFFIX)
            .unwrap_or(&name);
        if name == STATE_FILE
            || name == JOURNAL_FILE
            || name.starts_with(STATE_TEMP_PREFIX)
            || is_archive_file(archive)
        {
            names.push(name);
        }
    }
    Ok(names)
}

/// Removes [`own_files`] of `dir`.
fn clear_own_files(dir: &Path) -> Result<(), WorkError> {
    for name in own_files(dir)? {
        remove_own_file(&dir.join(name))?;
    }
    Ok(())
}

/// Removes one file (a link is removed, never followed); one that is not there is fine.
fn remove_own_file(path: &Path) -> Result<(), WorkError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("cannot remove", path)(e)),
        _ => Ok(()),
    }
}

fn read_state(dir: &Path) -> Option<Result<State, String>> {
    let path = dir.join(STATE_FILE);
    let bytes = match crate::small_file::read_small(&path, STATE_LIMIT) {
        Ok(bytes) => bytes?,
        Err(e) => return Some(Err(format!("cannot read {}: {e}", path.display()))),
    };
    Some(
        serde_json::from_slice::<State>(&bytes)
            .map_err(|e| format!("{} is not readable: {e}", path.display()))
            .and_then(|state| {
                if state.version != STATE_VERSION {
                    return Err(format!(
                        "it was written by another ferry (state {})",
                        state.version
                    ));
                }
                // What a state names becomes file names and paths: held to the rules a fresh
                // plan is, so a planted state cannot point the writer anywhere else.
                let plan = state.plan()?;
                let problems = super::readable::unreadable(&plan);
                if let Some(first) = problems.first() {
                    return Err(format!(
                        "{} plans what a bundle cannot hold ({first})",
                        path.display()
                    ));
                }
                Ok(state)
            }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_is_read_back_and_a_torn_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let place = WorkPlace {
            anchor: dir.path().to_path_buf(),
            below: "ferry-pull".into(),
        };
        let work = WorkDir::lock(&place).unwrap();
        assert!(matches!(WorkDir::lock(&place), Err(WorkError::Busy(_))));
        let journal = work.journal().unwrap();
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        journal.at(&a, 100).unwrap();
        journal.at(&b, 7).unwrap();
        journal.done(&a).unwrap();
        journal
            .sealed(&FileRecord {
                name: "p.tar.0000.chunk".into(),
                size: 9,
                sha256: "ab".into(),
                gost: None,
            })
            .unwrap();
        // Lines no ferry writes: too long, or naming anything but a plain archive file.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(work.path().join(JOURNAL_FILE))
            .unwrap();
        file.write_all(b"\n").unwrap();
        file.write_all(&b"x ".repeat(4 << 20)).unwrap();
        file.write_all(b"\nsealed ../up.tar 1 ab -\nsealed /etc/x.tar 1 ab -\n")
            .unwrap();
        file.write_all(b"done sha256:12").unwrap();
        let progress = work.progress();
        assert_eq!(progress.done, HashSet::from([a]));
        assert_eq!(progress.at, HashMap::from([(b, 7)]));
        assert_eq!(progress.sealed["p.tar.0000.chunk"].size, 9);
        assert_eq!(progress.sealed["p.tar.0000.chunk"].gost, None);
        assert_eq!(
            progress.sealed.len(),
            1,
            "only the plain name: {:?}",
            progress.sealed
        );
    }
}
