//! `ferry verify`: checks a bundle offline, reading every byte once. The tar headers are read
//! first (seeking over the data); then every archive file is read in one pass, on as many
//! threads as there are cores, feeding at the same time the file's SHA-256 (and Streebog-256
//! when the bundle has GOST sums or the user asks) and the SHA-256 of every blob whose data
//! starts in it. Then every tag's graph is followed through the small manifests, and each
//! archive is held to `bundle.json`'s list of its blobs. Problems are collected, not stopped at.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::BytesMut;

use crate::bundle::blob_lists::BlobLists;
use crate::bundle::contents::{check_archive, tag_problems};
use crate::bundle::metadata::{GOSTSUMS, SHA256SUMS};
use crate::bundle::names::gostsum_name;
use crate::bundle::sums::{parse_sum_list, read_gostsum, read_small_text};
use crate::bundle::{
    Archive, ArchiveFile, ArchiveLayouts, Bundle, BundleError, EntryLocation, TarIndex,
};
use crate::digest::{Digest, GostHasher, Sha256Hasher};
use crate::parallel::try_map;
use crate::report::{Outcome, Reporter};
use crate::trust::in_bundle::{InBundleError, check_bundle};
use crate::trust::{Policy, PublicKey, TrustError, check_bundle_signature};

/// What `verify` checks beyond sizes and SHA-256.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Check Streebog-256 sums; a file without one is then a problem.
    pub gost: bool,
    /// `--key`: `bundle.json.sig` must be this key's signature, checked before anything else
    /// is read.
    pub key: Option<PublicKey>,
    /// `--verify-signatures`: every image held to this policy with the bundle's signatures.
    pub policy: Option<Policy>,
}

/// Why a bundle could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The bundle cannot be read.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The bundle's signature does not hold, or the policy cannot be used.
    #[error(transparent)]
    Trust(#[from] TrustError),
}

/// What `verify` found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Archive files checked.
    pub files: usize,
    /// Blobs (manifests included) checked by digest.
    pub blobs: usize,
    /// Tags whose whole graph was found.
    pub images: usize,
    /// Every problem, naming the file (and chunk) it is in.
    pub problems: Vec<String>,
    /// For a differential bundle: the base, and the blobs it left out (expected at the target).
    pub base: Option<crate::bundle::BaseRecord>,
    /// With `--verify-signatures`: the images the policy accepted.
    pub signed_images: usize,
    /// The policy the pull held the images to, as `bundle.json` records it.
    pub pulled_under: Option<crate::bundle::PolicyRecord>,
}

/// Checks the bundle in `dir`. An error means the bundle could not be checked at all (or is
/// missing files, or its signature does not hold); problems found while checking are in the
/// report.
pub async fn verify(
    dir: &Path,
    options: VerifyOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<VerifyReport, VerifyError> {
    let dir: PathBuf = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let bundle = match &options.key {
            Some(key) => Bundle::open_verified(&dir, &check_bundle_signature(&dir, key)?)?,
            None => Bundle::open(&dir)?,
        };
        let mut report = VerifyReport {
            problems: bundle.inconsistencies()?,
            ..VerifyReport::default()
        };
        let indexes: Vec<Option<TarIndex>> = bundle
            .archives
            .iter()
            .map(|archive| match TarIndex::read(archive) {
                Ok(index) => Some(index),
                Err(err) => {
                    report.problems.push(err.to_string());
                    None
                }
            })
            .collect();
        read_everything(
            &bundle,
            &indexes,
            options.gost,
            reporter.as_ref(),
            &mut report,
        )?;
        let handle = tokio::runtime::Handle::current();
        report.base = bundle.metadata.as_ref().and_then(|m| m.base.clone());
        report.pulled_under = bundle
            .metadata
            .as_ref()
            .and_then(|m| m.signature_policy.clone());
        let left_out: BTreeMap<Digest, u64> = report
            .base
            .iter()
            .flat_map(|b| &b.left_out)
            .map(|b| (b.digest.clone(), b.size))
            .collect();
        let mut lists = BlobLists::new(bundle.metadata.as_ref());
        let mut contents = Vec::new();
        for (archive, index) in bundle.archives.iter().zip(indexes) {
            let Some(index) = index else {
                lists.unreadable();
                continue;
            };
            let mut layouts = match ArchiveLayouts::with_index(archive, index) {
                Ok(layouts) => layouts,
                Err(err) => {
                    report.problems.push(err.to_string());
                    lists.unreadable();
                    continue;
                }
            };
            let found = check_archive(&mut layouts, &left_out, &handle);
            let listed = bundle
                .metadata
                .iter()
                .flat_map(|m| &m.archives)
                .find(|a| a.name == archive.name)
                .map(|a| a.blobs.as_slice())
                .unwrap_or_default();
            lists.archive(listed, &layouts, found.graphs(), found.problems.is_empty());
            contents.push(found);
        }
        report.problems.extend(lists.finish(&left_out));
        report.images = contents.iter().map(|c| c.tags.len()).sum();
        let listed = bundle.metadata.as_ref().map(|m| m.images.as_slice());
        report.problems.extend(tag_problems(listed, &contents));
        if let Some(policy) = &options.policy {
            let verdicts = check_bundle(&bundle, policy).map_err(|e| match e {
                InBundleError::Bundle(e) => VerifyError::Bundle(e),
                InBundleError::Trust(e) => VerifyError::Trust(e),
            })?;
            report.signed_images = verdicts.accepted.len();
            report.problems.extend(
                verdicts.refused.into_iter().map(|(name, why)| {
                    format!("{name}: refused by {}: {why}", policy.file.display())
                }),
            );
        }
        Ok(report)
    })
    .await
    .expect("verify task does not panic")
}

/// The sums `SHA256SUMS` and `GOSTSUMS` give, by file name.
struct ListedSums {
    sha256: HashMap<String, String>,
    gost: HashMap<String, String>,
}

/// The sums of list `name` in `dir`; a file it gives two different sums is left out (that is a
/// problem of its own, which `inconsistencies` names).
fn listed_sums(dir: &Path, name: &str, gost: bool) -> Result<HashMap<String, String>, BundleError> {
    let Some(text) = read_small_text(&dir.join(name))? else {
        return Ok(HashMap::new());
    };
    let mut sums: HashMap<String, String> = HashMap::new();
    let mut torn = Vec::new();
    for (file, sum) in parse_sum_list(&text, gost) {
        if sums.get(&file).is_some_and(|earlier| *earlier != sum) {
            torn.push(file.clone());
        }
        sums.insert(file, sum);
    }
    for file in torn {
        sums.remove(&file);
    }
    Ok(sums)
}

/// One archive file, and the blobs whose data starts in it.
struct FileWork<'a> {
    archive: &'a Archive,
    file: usize,
    /// Where the file starts in its archive.
    start: u64,
    blobs: Vec<(&'a str, EntryLocation)>,
}

/// The one pass over the data: every file in parallel, each read once.
fn read_everything(
    bundle: &Bundle,
    indexes: &[Option<TarIndex>],
    gost: bool,
    reporter: &dyn Reporter,
    report: &mut VerifyReport,
) -> Result<(), BundleError> {
    // The sum lists agree with bundle.json where both have a sum (`inconsistencies`); for a
    // file bundle.json has none for (a d8 bundle, or sums added after the pull) they are
    // checked here.
    let listed = ListedSums {
        sha256: listed_sums(&bundle.dir, SHA256SUMS, false)?,
        gost: listed_sums(&bundle.dir, GOSTSUMS, true)?,
    };
    let mut work = Vec::new();
    for (archive, index) in bundle.archives.iter().zip(indexes) {
        // The one pass walks a file front to back: blobs in the order their bytes lie, which
        // is not their path order (d8 mirror, GNU tar and ferry order entries differently).
        let mut blobs: Vec<(&str, EntryLocation)> = index
            .iter()
            .flat_map(|i| i.entries())
            .filter(|(path, _)| is_blob_path(path))
            .collect();
        blobs.sort_by_key(|(_, location)| location.offset);
        let mut start = 0;
        for (file, record) in archive.files.iter().enumerate() {
            let end = start + record.size;
            work.push(FileWork {
                archive,
                file,
                start,
                blobs: blobs
                    .iter()
                    .filter(|(_, l)| l.offset >= start && l.offset < end)
                    .copied()
                    .collect(),
            });
            start = end;
        }
    }
    let total: u64 = bundle
        .archives
        .iter()
        .fold(0, |sum, a| sum.saturating_add(a.size()));
    // Largest first: a file's Streebog is one sequential stream, so a big file started last
    // would run alone on one core at the end while the others sit idle.
    work.sort_by_key(|w| std::cmp::Reverse(w.archive.files[w.file].size));
    reporter.begin("checking files and blobs", work.len() as u64, total);
    let found = try_map(&work, |w| check_file(bundle, w, &listed, gost, reporter))?;
    let mut problems = Vec::new();
    for (file_problems, blobs) in found {
        problems.extend(file_problems);
        report.blobs += blobs;
    }
    problems.sort();
    report.files = work.len();
    report.problems.extend(problems);
    reporter.finish(&format!(
        "{} files and {} blobs read",
        report.files, report.blobs
    ));
    Ok(())
}

/// Reads one file once: its sums, and the digest of every blob that starts in it (a blob that
/// runs on into the next file is finished by reading just its tail there).
fn check_file(
    bundle: &Bundle,
    work: &FileWork,
    listed: &ListedSums,
    gost: bool,
    reporter: &dyn Reporter,
) -> Result<(Vec<String>, usize), BundleError> {
    let file: &ArchiveFile = &work.archive.files[work.file];
    let sum_file = gostsum_name(&file.name);
    let mut expected_gost: Vec<(String, String)> = Vec::new();
    match (&file.gost, listed.gost.get(&file.name)) {
        (Some(gost), _) => expected_gost.push(("bundle.json".into(), gost.clone())),
        (None, Some(gost)) => expected_gost.push((GOSTSUMS.into(), gost.clone())),
        (None, None) => {}
    }
    if let Some(gost) = read_gostsum(&bundle.dir.join(&sum_file))? {
        expected_gost.push((sum_file.clone(), gost));
    }
    let mut problems = Vec::new();
    if gost && expected_gost.is_empty() {
        problems.push(format!(
            "{}: no GOST sum to check ({sum_file} is missing)",
            file.name
        ));
    }

    let mut sha256 = Sha256Hasher::new();
    let mut gost = (!expected_gost.is_empty()).then(GostHasher::spawn);
    let mut blobs = work.blobs.iter().peekable();
    // The blob being hashed: its path, hasher, and where its data ends in the archive.
    let mut current: Option<(&str, Sha256Hasher, u64)> = None;
    let mut finished: Vec<(&str, Sha256Hasher)> = Vec::new();
    // One byte more than recorded tells a file that grew from one that is whole.
    let mut reader = std::fs::File::open(&file.path)
        .map_err(crate::bundle::io_error("cannot read", &file.path))?
        .take(file.size + 1);
    let mut at = work.start;
    loop {
        // A fresh buffer each time: the Streebog thread may still hold the last one.
        let mut buffer = BytesMut::zeroed(1 << 20);
        let n = reader
            .read(&mut buffer)
            .map_err(crate::bundle::io_error("cannot read", &file.path))?;
        if n == 0 {
            break;
        }
        buffer.truncate(n);
        sha256.update(&buffer);
        let end = at + n as u64;
        let mut pos = at;
        while pos < end {
            if current.is_none() {
                match blobs.peek() {
                    Some((path, location)) if location.offset < end => {
                        pos = pos.max(location.offset);
                        current =
                            Some((path, Sha256Hasher::new(), location.offset + location.size));
                        blobs.next();
                    }
                    _ => break,
                }
            }
            let (path, hasher, blob_end) = current.as_mut().expect("a blob is open");
            let upto = (*blob_end).min(end);
            hasher.update(&buffer[(pos - at) as usize..(upto - at) as usize]);
            pos = upto;
            if upto == *blob_end {
                let (path, hasher) = (*path, std::mem::take(hasher));
                finished.push((path, hasher));
                current = None;
            }
        }
        if let Some(hasher) = &mut gost {
            hasher.update(buffer.freeze());
        }
        reporter.bytes(n as u64);
        at = end;
    }
    if at - work.start != file.size {
        problems.push(format!(
            "{}: {} bytes, expected {} (the file changed while being checked?)",
            file.name,
            at - work.start,
            file.size
        ));
    }
    // A blob that runs on past this file: read the rest of it from the files that follow.
    if let Some((path, mut hasher, blob_end)) = current.take() {
        let rest = work.archive.source().slice(at, blob_end - at);
        let mut tail = rest.reader();
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            match tail.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => hasher.update(&buffer[..n]),
                Err(e) => {
                    problems.push(format!("{}: cannot read {path}: {e}", work.archive.name));
                    break;
                }
            }
        }
        finished.push((path, hasher));
    }
    let sha256 = sha256.finish().hex().to_string();
    let expected_sha256 = match (&file.sha256, listed.sha256.get(&file.name)) {
        (Some(expected), _) => Some(("bundle.json", expected)),
        (None, Some(expected)) => Some((SHA256SUMS, expected)),
        (None, None) => None,
    };
    if let Some((origin, expected)) = expected_sha256
        && *expected != sha256
    {
        problems.push(format!(
            "{}: SHA-256 is {sha256}, {origin} says {expected} (the file is damaged)",
            file.name
        ));
    }
    if let Some(actual) = gost.map(GostHasher::finish) {
        // When another GOST statement agrees with the file, the one that does not is what is
        // wrong. When only bundle.json's SHA-256 does, either that or the GOST statement is.
        let agreeing = expected_gost
            .iter()
            .find(|(_, expected)| *expected == actual)
            .map(|(agrees, _)| agrees);
        let sha256_agrees = file.sha256.as_deref() == Some(sha256.as_str());
        for (origin, expected) in &expected_gost {
            if *expected == actual {
                continue;
            }
            let says = format!("{}: {origin} says GOST sum {expected}", file.name);
            problems.push(match agreeing {
                Some(agrees) => format!(
                    "{says}, but the file's is {actual} as {agrees} says: {origin} is wrong, \
                     not the file"
                ),
                None if sha256_agrees => format!(
                    "{says}, but the file's is {actual}, while its SHA-256 is the one \
                     bundle.json gives: {origin} or that SHA-256 is wrong"
                ),
                None => format!("{says}, but the file's is {actual} (the file is damaged)"),
            });
        }
    }
    let count = finished.len();
    for (path, hasher) in finished {
        let hex = path.rsplit('/').next().unwrap_or_default();
        let actual = hasher.finish();
        if actual.hex() != hex {
            let location = work
                .blobs
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, l)| *l)
                .expect("a blob of this file");
            problems.push(format!(
                "{} ({}): {path} does not match its digest (its content hashes to {actual})",
                work.archive.name,
                work.archive
                    .files_holding(location.offset, location.size)
                    .join(", ")
            ));
        }
    }
    reporter.item(&file.name, file.size, Outcome::Checked);
    Ok((problems, count))
}

/// `…/blobs/<algorithm>/<hex>` for SHA-256: the files verify can check by name.
fn is_blob_path(path: &str) -> bool {
    let mut parts = path.rsplit('/');
    let (Some(hex), Some(algorithm), Some("blobs")) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    algorithm == "sha256" && hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}
