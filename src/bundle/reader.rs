//! Opening a bundle directory: from `bundle.json` when there is one (every listed file must be
//! there with its size), otherwise by scanning for archives and chunks as `d8 mirror` writes
//! them. A chunk sequence reads as one stream.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::metadata::{ArchiveRecord, BundleMetadata};
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
        self.files.iter().map(|f| f.size).sum()
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
                    path: f.path.clone(),
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
        let metadata = BundleMetadata::read(dir)?;
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

fn from_metadata(dir: &Path, metadata: &BundleMetadata) -> Result<Vec<Archive>, BundleError> {
    let mut problems = Vec::new();
    let mut archives = Vec::new();
    for record in &metadata.archives {
        let archive = Archive::from_record(dir, record);
        for file in &archive.files {
            match std::fs::metadata(&file.path) {
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

#[derive(Default)]
struct Found {
    whole: Option<u64>,
    chunks: BTreeMap<usize, (String, u64)>,
}

fn scan(dir: &Path) -> Result<Vec<Archive>, BundleError> {
    let listing = std::fs::read_dir(dir).map_err(io_error("cannot list", dir))?;
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
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
                found
                    .entry(archive)
                    .or_default()
                    .chunks
                    .insert(number, (name, meta.len()));
            }
        }
    }
    let mut problems = Vec::new();
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
                let last = *found.chunks.keys().next_back().expect("at least one chunk");
                let missing: Vec<String> = (0..=last)
                    .filter(|n| !found.chunks.contains_key(n))
                    .map(|n| chunk_name(&name, n))
                    .collect();
                if !missing.is_empty() {
                    problems.extend(missing.into_iter().map(|m| format!("{m} is missing")));
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
