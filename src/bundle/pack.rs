//! Packing OCI layout directories on disk into archives: the archive plan filled from local
//! files through the pipeline a pull fills it from a registry with (same plan, same writer,
//! same fill and sealing, same replacement of an earlier bundle). `examples/pack-layouts.rs`
//! and the tests build bundles this way without a registry, including bundles no pull would
//! write (crafted entries, for the readers' tests).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::entry_path::EntryPath;
use super::fill::{FillHooks, Filled, LocalBlobs, fill_and_seal};
use super::jobs::blob_jobs;
use super::metadata::ArchiveRecord;
use super::plan::{ArchivePlan, EntryContent, tar_size};
use super::replace::{existing_files, remove_stale, remove_sums};
use super::writer::{ArchiveWriter, WriterOptions};
use super::{BundleError, io_error};
use crate::report::{QuietReporter, Reporter};
use crate::segment::BlobSource;

/// Files larger than this that are not named by their digest are refused rather than read
/// into memory (`oci-layout` and `index.json` are small).
const SMALL_FILE_LIMIT: u64 = 64 << 20;

/// How archives are packed.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackOptions {
    /// Cut every archive into chunks of exactly this many bytes (the last one shorter); 0
    /// writes one `.tar` file.
    pub chunk_size: u64,
    /// Also write a `.gostsum` (Streebog-256) beside every file.
    pub gost: bool,
    /// Replace files of the same archives left by an earlier bundle, removing stale chunks.
    pub force: bool,
}

/// Where an entry's bytes come from.
#[derive(Debug, Clone)]
pub enum PackSource {
    /// Content held in memory.
    Bytes(Vec<u8>),
    /// A file on disk of a known size. Under `blobs/sha256/<hex>` it is checked against that
    /// digest while it is copied.
    File {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
}

/// One file of an archive.
#[derive(Debug, Clone)]
pub struct PackEntry {
    /// Its path inside the archive (`/`-separated, relative).
    pub path: String,
    /// Its content.
    pub source: PackSource,
}

impl PackEntry {
    /// The entry's size in bytes.
    pub fn size(&self) -> u64 {
        match &self.source {
            PackSource::Bytes(bytes) => bytes.len() as u64,
            PackSource::File { size, .. } => *size,
        }
    }
}

/// The exact size of the archive `entries` make.
pub fn archive_size(entries: &[PackEntry]) -> u64 {
    tar_size(entries.iter().map(|e| (e.path.len(), e.size())))
}

/// The entries of the OCI layout in `dir`, placed under `prefix` in the archive ("" for the
/// archive root): `oci-layout`, `index.json` and every file under `blobs/`.
pub fn layout_entries(dir: &Path, prefix: &str) -> Result<Vec<PackEntry>, BundleError> {
    let under = |name: &str| {
        let prefix = prefix.trim_matches('/');
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        }
    };
    let file = |path: PathBuf| -> Result<PackSource, BundleError> {
        let meta = std::fs::metadata(&path).map_err(io_error("cannot read", &path))?;
        Ok(PackSource::File {
            path,
            size: meta.len(),
        })
    };
    let mut entries = Vec::new();
    for name in ["oci-layout", "index.json"] {
        entries.push(PackEntry {
            path: under(name),
            source: file(dir.join(name))?,
        });
    }
    let blobs = dir.join("blobs");
    let algorithms = std::fs::read_dir(&blobs).map_err(io_error("cannot list", &blobs))?;
    for algorithm in algorithms {
        let algorithm = algorithm.map_err(io_error("cannot list", &blobs))?;
        if !algorithm.path().is_dir() {
            continue;
        }
        let alg_name = algorithm.file_name().to_string_lossy().into_owned();
        let files = std::fs::read_dir(algorithm.path())
            .map_err(io_error("cannot list", algorithm.path()))?;
        for item in files {
            let item = item.map_err(io_error("cannot list", algorithm.path()))?;
            if !item.path().is_file() {
                continue;
            }
            entries.push(PackEntry {
                path: under(&format!(
                    "blobs/{alg_name}/{}",
                    item.file_name().to_string_lossy()
                )),
                source: file(item.path())?,
            });
        }
    }
    Ok(entries)
}

/// Writes `name` into `dir` from `entries`; see [`pack_archives`].
pub async fn pack_archive(
    dir: &Path,
    name: &str,
    entries: Vec<PackEntry>,
    options: &PackOptions,
) -> Result<ArchiveRecord, BundleError> {
    let mut records = pack_archives(dir, vec![(name.to_string(), entries)], options).await?;
    Ok(records.remove(0))
}

/// Writes archives into `dir`, each from its entries (sorted bytewise by path), the way a pull
/// writes them. Without `force`, files of the same archives already there are refused; with
/// it, `bundle.json` and the sum lists go first, then the new files replace the old and stale
/// chunks are removed.
pub async fn pack_archives(
    dir: &Path,
    archives: Vec<(String, Vec<PackEntry>)>,
    options: &PackOptions,
) -> Result<Vec<ArchiveRecord>, BundleError> {
    std::fs::create_dir_all(dir).map_err(io_error("cannot create", dir))?;
    let mut replaces = false;
    for (name, _) in &archives {
        let found = existing_files(dir, name)?;
        if !options.force
            && let Some(first) = found.first()
        {
            return Err(BundleError::Exists {
                path: dir.join(first),
            });
        }
        replaces |= !found.is_empty();
    }
    if replaces {
        remove_sums(dir)?;
    }
    let (plans, blobs) = archive_plans(archives, options.chunk_size)?;

    let work = tempfile::Builder::new()
        .prefix(".ferry-pack-")
        .tempdir_in(dir)
        .map_err(io_error("cannot create a work directory in", dir))?;
    let writer = {
        let (dir, work, gost) = (dir.to_path_buf(), work.path().to_path_buf(), options.gost);
        let options = WriterOptions {
            gost,
            ..WriterOptions::default()
        };
        tokio::task::spawn_blocking(move || ArchiveWriter::open(&dir, &work, plans, options))
            .await
            .expect("opening the archives does not panic")?
    };
    let jobs = blob_jobs(writer.plans());
    let reporter: Arc<dyn Reporter> = Arc::new(QuietReporter);
    let records =
        match fill_and_seal(writer, &blobs, jobs, 8, &FillHooks::default(), &reporter).await? {
            Filled::Sealed(records, _) => records,
            Filled::Failed(report) => {
                let (_, error) = report.failures.into_iter().next().expect("a failure");
                return Err(error);
            }
        };
    remove_stale(dir, &records)?;
    Ok(records)
}

/// The archive plans of `archives`, and where their blobs are read: an entry named by its
/// digest (`blobs/sha256/<hex>`) is a blob read from its file and checked; any other is held
/// in memory.
fn archive_plans(
    archives: Vec<(String, Vec<PackEntry>)>,
    chunk_size: u64,
) -> Result<(Vec<ArchivePlan>, LocalBlobs), BundleError> {
    let mut blobs = LocalBlobs::new();
    let mut plans = Vec::with_capacity(archives.len());
    for (name, entries) in archives {
        let mut contents = Vec::with_capacity(entries.len());
        for entry in entries {
            let named = EntryPath::from(entry.path);
            let content = match entry.source {
                PackSource::Bytes(bytes) => EntryContent::Bytes(bytes.into()),
                PackSource::File { path, size } => match named.digest() {
                    Some(digest) => {
                        blobs.insert(digest.clone(), BlobSource::file(path, size));
                        EntryContent::Blob {
                            digest: digest.clone(),
                            size,
                        }
                    }
                    None => EntryContent::Bytes(read_small(&path, size)?.into()),
                },
            };
            contents.push((named, content));
        }
        plans.push(ArchivePlan::new(&name, contents, chunk_size)?);
    }
    Ok((plans, blobs))
}

fn read_small(path: &Path, size: u64) -> Result<Vec<u8>, BundleError> {
    if size > SMALL_FILE_LIMIT {
        return Err(BundleError::Io(crate::file_error::FileError::other(
            "refusing to hold in memory",
            path,
            format!("{size} bytes, and it is not named by its digest"),
        )));
    }
    let bytes = std::fs::read(path).map_err(io_error("cannot read", path))?;
    if bytes.len() as u64 != size {
        return Err(BundleError::Io(crate::file_error::FileError::other(
            "cannot pack",
            path,
            "the file changed size while being packed",
        )));
    }
    Ok(bytes)
}
