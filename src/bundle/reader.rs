//! Opening a bundle directory: from `bundle.json` when there is one (every listed file must be
//! there with its size), otherwise by scanning for archives and chunks as `d8 mirror` writes
//! them. A chunk sequence reads as one stream.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::metadata::{ArchiveRecord, BundleMetadata, GOSTSUMS, SHA256SUMS};
use super::names::{ArchiveFileName, chunk_name, parse_archive_file};
use super::{BundleError, io_error};
use crate::segment::{BlobSource, FileSegment};

/// One file of an archive on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFile {
    /// Its name in the bundle directory.
    pub name: String,
    /// Its path.
    pub path: PathBuf,
    /// Its size on disk (equal to the recorded size when there is `bundle.json`).
    pub size: u64,
    /// SHA-256 recorded in `bundle.json`.
    pub sha256: Option<String>,
    /// Streebog-256 recorded in `bundle.json`.
    pub gost: Option<String>,
}

/// One archive: a `.tar`, or chunks that read as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// Its name (`platform.tar`).
    pub name: String,
    /// Its files in order.
    pub files: Vec<ArchiveFile>,
}

impl Archive {
    /// Bytes of the whole archive.
    pub fn size(&self) -> u64 {
        self.files
            .iter()
            .fold(0, |sum, f| sum.saturating_add(f.size))
    }

    /// The archive a [`ArchiveRecord`] describes, its files in `dir`.
    pub fn from_record(dir: &Path, record: &ArchiveRecord) -> Archive {
        Archive {
            name: record.name.clone(),
            files: record
                .files
                .iter()
                .map(|file| ArchiveFile {
                    name: file.name.clone(),
                    path: dir.join(&file.name),
                    size: file.size,
                    sha256: Some(file.sha256.clone()),
                    gost: file.gost.clone(),
                })
                .collect(),
        }
    }

    /// The whole archive as one byte stream.
    pub fn source(&self) -> BlobSource {
        BlobSource::segments(
            self.files
                .iter()
                .map(|f| FileSegment {
                    path: f.path.as_path().into(),
                    offset: 0,
                    len: f.size,
                })
                .collect(),
        )
    }

    /// The names of the files that bytes `offset..offset + len` of the archive live in.
    pub fn files_holding(&self, offset: u64, len: u64) -> Vec<&str> {
        let mut start = 0;
        let end = offset + len.max(1);
        let mut names = Vec::new();
        for file in &self.files {
            let file_end = start + file.size;
            if start < end && offset < file_end {
                names.push(file.name.as_str());
            }
            start = file_end;
        }
        names
    }
}

/// A bundle directory, opened.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The directory.
    pub dir: PathBuf,
    /// `bundle.json`, absent in bundles written by `d8 mirror pull`.
    pub metadata: Option<BundleMetadata>,
    /// The archives, sorted by name.
    pub archives: Vec<Archive>,
}

impl Bundle {
    /// Opens `dir`. With `bundle.json`, every file it lists must exist with its size; without,
    /// chunk numbering must have no gaps. Every problem found is named in the error.
    pub fn open(dir: &Path) -> Result<Bundle, BundleError> {
        Self::open_with(dir, BundleMetadata::read(dir)?)
    }

    /// [`Bundle::open`] with the `bundle.json` of these bytes, read once already (to check its
    /// signature): what was checked is what is used, whatever the file holds by now.
    pub fn open_verified(dir: &Path, metadata: &[u8]) -> Result<Bundle, BundleError> {
        let path = dir.join(super::metadata::BUNDLE_FILE);
        let (metadata, _) = BundleMetadata::from_bytes(metadata, &path)?;
        Self::open_with(dir, Some(metadata))
    }

    fn open_with(dir: &Path, metadata: Option<BundleMetadata>) -> Result<Bundle, BundleError> {
        let archives = match &metadata {
            Some(metadata) => from_metadata(dir, metadata)?,
            None => scan(dir)?,
        };
        if archives.is_empty() && metadata.is_none() {
            return Err(BundleError::NotABundle {
                path: dir.to_path_buf(),
            });
        }
        Ok(Bundle {
            dir: dir.to_path_buf(),
            metadata,
            archives,
        })
    }
}

/// Checks that a record names only files of its own archive, in order: `name.tar`, or
/// `name.tar.0000.chunk`, `name.tar.0001.chunk`, … A crafted `bundle.json` cannot make ferry
/// read `/etc/hostname` or `/dev/zero`.
fn check_names(record: &ArchiveRecord) -> Result<(), String> {
    if parse_archive_file(&record.name) != Some(ArchiveFileName::Whole(record.name.clone())) {
        return Err(format!(
            "'{}' is not an archive name (NAME.tar, no directories)",
            record.name
        ));
    }
    if record.files.is_empty() {
        return Err(format!("archive {} lists no files", record.name));
    }
    for (i, file) in record.files.iter().enumerate() {
        let expected = if record.files.len() == 1 && file.name == record.name {
            ArchiveFileName::Whole(record.name.clone())
        } else {
            ArchiveFileName::Chunk(record.name.clone(), i)
        };
        if parse_archive_file(&file.name) != Some(expected) || file.name.contains('/') {
            return Err(format!(
                "archive {} lists '{}', which is not its file number {i}",
                record.name, file.name
            ));
        }
    }
    Ok(())
}

fn from_metadata(dir: &Path, metadata: &BundleMetadata) -> Result<Vec<Archive>, BundleError> {
    let mut problems = Vec::new();
    let mut archives = Vec::new();
    let mut names = std::collections::HashSet::new();
    for record in &metadata.archives {
        let bad = |reason: String| BundleError::BadMetadata {
            path: dir.join(super::metadata::BUNDLE_FILE),
            reason,
        };
        check_names(record).map_err(bad)?;
        if !names.insert(record.name.as_str()) {
            return Err(bad(format!("it lists archive {} twice", record.name)));
        }
        let archive = Archive::from_record(dir, record);
        for file in &archive.files {
            // Not followed: a link named like a chunk is not a chunk.
            match std::fs::symlink_metadata(&file.path) {
                Ok(meta) if !meta.is_file() => {
                    problems.push(format!("{} is not a regular file", file.name))
                }
                Ok(meta) if meta.len() == file.size => {}
                Ok(meta) => problems.push(format!(
                    "{} is {} bytes, bundle.json says {} (truncated, or still being copied?)",
                    file.name,
                    meta.len(),
                    file.size
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    problems.push(format!("{} is missing", file.name))
                }
                Err(e) => return Err(io_error("cannot read", &file.path)(e)),
            }
        }
        archives.push(archive);
    }
    if !problems.is_empty() {
        return Err(BundleError::Incomplete { problems });
    }
    archives.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(archives)
}

impl Bundle {
    /// What does not add up between `bundle.json`, the directory and the sum lists: archive
    /// files `bundle.json` does not list, `SHA256SUMS`/`GOSTSUMS`/`.gostsum` sums that disagree
    /// with it, a list giving one file two sums, and (without `bundle.json`, where the lists are
    /// the only record of the files) a list naming a file the bundle lacks. `verify` reports
    /// these; `push` and `serve` refuse a bundle that has any.
    pub fn inconsistencies(&self) -> Result<Vec<String>, BundleError> {
        let mut problems = Vec::new();
        let mut lists = Vec::new();
        for (list, gost) in [(SHA256SUMS, false), (GOSTSUMS, true)] {
            let Some(text) = super::sums::read_small_text(&self.dir.join(list))? else {
                lists.push((list, gost, None));
                continue;
            };
            let sums = super::sums::parse_sum_list(&text, gost);
            // `sha256sum -c` and `rhash -c` check every line: two sums for one file cannot
            // both hold.
            let mut first: BTreeMap<&str, &str> = BTreeMap::new();
            for (name, sum) in &sums {
                if first
                    .insert(name, sum)
                    .is_some_and(|earlier| earlier != sum)
                {
                    problems.push(format!("{list} gives {name} two different sums"));
                }
            }
            lists.push((list, gost, Some(sums)));
        }
        let Some(metadata) = &self.metadata else {
            let files: std::collections::HashSet<&str> = self
                .archives
                .iter()
                .flat_map(|a| &a.files)
                .map(|f| f.name.as_str())
                .collect();
            // Other files of the directory (a `.gostsum`) may be listed too.
            let present = |name: &str| {
                files.contains(name)
                    || (!name.contains('/')
                        && std::fs::symlink_metadata(self.dir.join(name))
                            .is_ok_and(|m| m.is_file()))
            };
            for (list, _, sums) in &lists {
                for (name, _) in sums.iter().flatten() {
                    if !present(name) {
                        problems.push(format!("{list} lists {name}, which is not in the bundle"));
                    }
                }
            }
            return Ok(problems);
        };
        let listed: std::collections::HashMap<&str, &super::FileRecord> = metadata
            .archives
            .iter()
            .flat_map(|a| &a.files)
            .map(|f| (f.name.as_str(), f))
            .collect();
        let listing = std::fs::read_dir(&self.dir).map_err(io_error("cannot list", &self.dir))?;
        let mut unlisted = Vec::new();
        for item in listing {
            let item = item.map_err(io_error("cannot list", &self.dir))?;
            let name = item.file_name().to_string_lossy().into_owned();
            if parse_archive_file(&name).is_some() && !listed.contains_key(name.as_str()) {
                unlisted.push(name);
            }
        }
        unlisted.sort();
        for name in unlisted {
            problems.push(format!(
                "{name} is in the bundle directory but bundle.json does not list it"
            ));
        }
        for (list, gost, sums) in &lists {
            let Some(sums) = sums else {
                if !gost && !listed.is_empty() {
                    problems.push(format!("{list} is missing"));
                }
                continue;
            };
            for (name, sum) in sums {
                let Some(file) = listed.get(name.as_str()) else {
                    problems.push(format!(
                        "{list} has {name}, which bundle.json does not list"
                    ));
                    continue;
                };
                // A GOST sum added after the pull (`rhash --gost12-256 --bsd`) for a file
                // bundle.json has none for is checked against the file by verify.
                let expected = if *gost {
                    file.gost.as_deref()
                } else {
                    Some(file.sha256.as_str())
                };
                if expected.is_some_and(|expected| expected != sum) {
                    problems.push(format!("{list} and bundle.json disagree about {name}"));
                }
            }
            for (name, file) in &listed {
                let has_sum = !gost || file.gost.is_some();
                if has_sum && !sums.iter().any(|(n, _)| n == name) {
                    problems.push(format!("{list} lacks {name}"));
                }
            }
        }
        // A file's `.gostsum` (d8's form) states its Streebog sum a third time.
        let mut names: Vec<&str> = listed.keys().copied().collect();
        names.sort_unstable();
        for name in names {
            let sum_file = super::names::gostsum_name(name);
            if let Some(expected) = &listed[name].gost
                && let Some(sum) = super::sums::read_gostsum(&self.dir.join(&sum_file))?
                && sum != *expected
            {
                problems.push(format!("{sum_file} and bundle.json disagree about {name}"));
            }
        }
        Ok(problems)
    }
}

/// The gaps in a chunk numbering, from the numbers found alone (a crafted name like
/// `x.tar.99999999999.chunk` must not make ferry count to it): the first few missing names,
/// then how many more.
fn missing_chunks(name: &str, chunks: &BTreeMap<usize, (String, u64)>) -> Vec<String> {
    const SHOWN: usize = 8;
    let mut problems = Vec::new();
    let mut expected = 0usize;
    let mut more = 0usize;
    for &number in chunks.keys() {
        let gap = number - expected;
        for missing in expected..number {
            if problems.len() < SHOWN {
                problems.push(format!("{} is missing", chunk_name(name, missing)));
            } else {
                more += gap - (missing - expected);
                break;
            }
        }
        // A name can carry usize::MAX; nothing follows it.
        expected = number.saturating_add(1);
    }
    if more > 0 {
        problems.push(format!("and {more} more chunks of {name} are missing"));
    }
    problems
}

#[derive(Default)]
struct Found {
    whole: Option<u64>,
    chunks: BTreeMap<usize, (String, u64)>,
}

fn scan(dir: &Path) -> Result<Vec<Archive>, BundleError> {
    let listing = std::fs::read_dir(dir).map_err(io_error("cannot list", dir))?;
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    let mut duplicates = Vec::new();
    for item in listing {
        let item = item.map_err(io_error("cannot list", dir))?;
        let name = item.file_name().to_string_lossy().into_owned();
        let Some(parsed) = parse_archive_file(&name) else {
            continue;
        };
        let meta = item
            .metadata()
            .map_err(io_error("cannot read", item.path()))?;
        if !meta.is_file() {
            continue;
        }
        match parsed {
            ArchiveFileName::Whole(archive) => {
                found.entry(archive).or_default().whole = Some(meta.len())
            }
            ArchiveFileName::Chunk(archive, number) => {
                // `x.tar.0003.chunk` and `x.tar.00003.chunk` both say "chunk 3": which one
                // would be read would depend on the order of the directory listing.
                let chunks = &mut found.entry(archive.clone()).or_default().chunks;
                if let Some((other, _)) = chunks.get(&number) {
                    let (first, second) = if *other < name {
                        (other.clone(), name.clone())
                    } else {
                        (name.clone(), other.clone())
                    };
                    duplicates.push(format!(
                        "{first} and {second} are both chunk {number} of {archive}; remove the \
                         one that does not belong"
                    ));
                }
                chunks.insert(number, (name, meta.len()));
            }
        }
    }
    duplicates.sort();
    let mut problems = duplicates;
    let mut archives = Vec::new();
    for (name, found) in found {
        let file = |file_name: String, size: u64| ArchiveFile {
            path: dir.join(&file_name),
            name: file_name,
            size,
            sha256: None,
            gost: None,
        };
        match (found.whole, found.chunks.is_empty()) {
            (Some(_), false) => problems.push(format!(
                "both {name} and its chunks are present; remove the one that does not belong"
            )),
            (Some(size), true) => archives.push(Archive {
                files: vec![file(name.clone(), size)],
                name,
            }),
            (None, _) => {
                let missing = missing_chunks(&name, &found.chunks);
                if !missing.is_empty() {
                    problems.extend(missing);
                    continue;
                }
                archives.push(Archive {
                    files: found
                        .chunks
                        .into_values()
                        .map(|(file_name, size)| file(file_name, size))
                        .collect(),
                    name,
                });
            }
        }
    }
    if !problems.is_empty() {
        return Err(BundleError::Incomplete { problems });
    }
    Ok(archives)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_numbered_far_away_is_counted_not_listed() {
        let chunks: BTreeMap<usize, (String, u64)> = [0usize, 3, 99_999_999_999]
            .into_iter()
            .map(|n| (n, (chunk_name("x.tar", n), 1)))
            .collect();
        let missing = missing_chunks("x.tar", &chunks);
        assert_eq!(missing.len(), 9, "{missing:?}");
        assert_eq!(missing[0], "x.tar.0001.chunk is missing");
        assert_eq!(missing[1], "x.tar.0002.chunk is missing");
        assert_eq!(
            missing[8],
            format!(
                "and {} more chunks of x.tar are missing",
                99_999_999_999u64 - 4 - 6
            )
        );
        // The largest number a name can carry does not overflow the count.
        let chunks: BTreeMap<usize, (String, u64)> = [0usize, usize::MAX]
            .into_iter()
            .map(|n| (n, (chunk_name("x.tar", n), 1)))
            .collect();
        let missing = missing_chunks("x.tar", &chunks);
        assert_eq!(missing.len(), 9, "{missing:?}");
    }

    #[test]
    fn two_names_for_one_chunk_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["p.tar.0000.chunk", "p.tar.0001.chunk", "p.tar.00001.chunk"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let err = Bundle::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("p.tar.00001.chunk and p.tar.0001.chunk are both chunk 1 of p.tar"),
            "{err}"
        );
    }
}
