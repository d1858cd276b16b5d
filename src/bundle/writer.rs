//! Packs OCI layouts into one archive: a deterministic tar stream cut into chunk files of an
//! exact size, each hashed (SHA-256 inline, Streebog-256 on a thread of its own) while it is
//! written, so the output is never read back. Files appear under their final names only when
//! the whole archive is complete.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::index::check_entry_path;
use super::metadata::{ArchiveRecord, FileRecord};
use super::names::{ArchiveFileName, chunk_name, gostsum_name, parse_archive_file};
use super::{BundleError, io_error};
use crate::digest::{GostHasher, Sha256Hasher};
use crate::parallel::try_map;
use crate::store::fsync_dir;

/// How archives are written.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackOptions {
    /// Cut the archive into chunks of exactly this many bytes (the last one shorter); 0 writes
    /// one `.tar` file.
    pub chunk_size: u64,
    /// Also write a `.gostsum` (Streebog-256) beside every file.
    pub gost: bool,
    /// Replace files of the same archive left by an earlier bundle, removing stale chunks.
    pub force: bool,
}

/// Where an entry's bytes come from.
#[derive(Debug, Clone)]
pub enum PackSource {
    /// Small generated content (`index.json`, `oci-layout`).
    Bytes(Vec<u8>),
    /// A file on disk of a known size (a blob in a store or layout).
    File {
        /// The file.
        path: PathBuf,
        /// Its size; a file of another size fails the pack.
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

/// The tar's own bytes for `entries`: a header per entry (two for names over 100 bytes),
/// data padded to 512, and the two zero blocks at the end. Used to plan sizes before packing.
pub fn archive_size(entries: &[PackEntry]) -> u64 {
    tar_size(entries.iter().map(|e| (e.path.len(), e.size())))
}

/// [`archive_size`] from (path length, data size) pairs.
pub fn tar_size(entries: impl IntoIterator<Item = (usize, u64)>) -> u64 {
    let padded = |n: u64| n.div_ceil(512) * 512;
    let mut total = 1024;
    for (path_len, size) in entries {
        total += 512 + padded(size);
        if path_len > 100 {
            total += 512 + padded(path_len as u64 + 1);
        }
    }
    total
}

/// The entries of the OCI layout in `dir`, placed under `prefix` in the archive ("" for the
/// archive root): `oci-layout`, `index.json` and every file under `blobs/`. Nested layouts
/// and partial downloads are left out.
pub fn layout_entries(dir: &Path, prefix: &str) -> Result<Vec<PackEntry>, BundleError> {
    let under = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", prefix.trim_end_matches('/'))
        }
    };
    let mut entries = Vec::new();
    for name in ["oci-layout", "index.json"] {
        let path = dir.join(name);
        let meta = std::fs::metadata(&path).map_err(io_error("cannot read", &path))?;
        entries.push(PackEntry {
            path: under(name),
            source: PackSource::File {
                path,
                size: meta.len(),
            },
        });
    }
    let blobs = dir.join("blobs");
    let algorithms = std::fs::read_dir(&blobs).map_err(io_error("cannot list", &blobs))?;
    for algorithm in algorithms {
        let algorithm = algorithm.map_err(io_error("cannot list", &blobs))?;
        let alg_name = algorithm.file_name().to_string_lossy().into_owned();
        if !algorithm.path().is_dir() {
            continue;
        }
        let files = std::fs::read_dir(algorithm.path())
            .map_err(io_error("cannot list", algorithm.path()))?;
        for file in files {
            let file = file.map_err(io_error("cannot list", algorithm.path()))?;
            let meta = file
                .metadata()
                .map_err(io_error("cannot read", file.path()))?;
            if !meta.is_file() {
                continue;
            }
            entries.push(PackEntry {
                path: under(&format!(
                    "blobs/{alg_name}/{}",
                    file.file_name().to_string_lossy()
                )),
                source: PackSource::File {
                    path: file.path(),
                    size: meta.len(),
                },
            });
        }
    }
    Ok(entries)
}

/// Writes `name` (e.g. `platform.tar`) into `dir` from `entries`, sorted bytewise by path.
/// `progress` hears every byte written. Returns the files written, in order, with their sums.
pub fn pack_archive(
    dir: &Path,
    name: &str,
    mut entries: Vec<PackEntry>,
    options: &PackOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ArchiveRecord, BundleError> {
    entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    for pair in entries.windows(2) {
        if pair[0].path == pair[1].path {
            return Err(BundleError::UnsafeEntry {
                archive: name.to_string(),
                entry: pair[0].path.clone(),
                reason: "the path appears twice",
            });
        }
    }
    for entry in &entries {
        check_entry_path(&entry.path).map_err(|reason| BundleError::UnsafeEntry {
            archive: name.to_string(),
            entry: entry.path.clone(),
            reason,
        })?;
    }
    let earlier = existing_files(dir, name)?;
    if !options.force
        && let Some(first) = earlier.first()
    {
        return Err(BundleError::Exists {
            path: dir.join(first),
        });
    }

    let sink = ChunkSink::new(dir, name, options, progress);
    let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, sink));
    tar.follow_symlinks(false);
    for entry in &entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(entry.size());
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        let data: Box<dyn Read> = match &entry.source {
            PackSource::Bytes(bytes) => Box::new(bytes.as_slice()),
            PackSource::File { path, size } => Box::new(ExactFile {
                file: File::open(path).map_err(io_error("cannot read", path))?,
                path: path.clone(),
                remaining: *size,
            }),
        };
        tar.append_data(&mut header, &entry.path, data)
            .map_err(|e| write_error(dir, name, e))?;
    }
    let buffered = tar.into_inner().map_err(|e| write_error(dir, name, e))?;
    let sink = buffered
        .into_inner()
        .map_err(|e| write_error(dir, name, e.into_error()))?;
    let finished = sink.finish()?;

    // Stale files of an earlier, bigger bundle go first: a crash after this point leaves fewer
    // files, never a mix that looks like one archive.
    let fresh: Vec<&str> = finished.iter().map(|f| f.record.name.as_str()).collect();
    for old in earlier.iter().filter(|old| !fresh.contains(&old.as_str())) {
        remove_if_present(&dir.join(old))?;
        remove_if_present(&dir.join(gostsum_name(old)))?;
    }
    let mut files = Vec::with_capacity(finished.len());
    for done in finished {
        let target = dir.join(&done.record.name);
        let sum_path = dir.join(gostsum_name(&done.record.name));
        match &done.record.gost {
            Some(gost) => {
                let temp = temp_name(&sum_path);
                std::fs::write(&temp, gost).map_err(io_error("cannot write", &temp))?;
                File::open(&temp)
                    .and_then(|f| f.sync_all())
                    .map_err(io_error("cannot sync", &temp))?;
                std::fs::rename(&done.temp, &target).map_err(io_error("cannot rename", &target))?;
                std::fs::rename(&temp, &sum_path).map_err(io_error("cannot rename", &sum_path))?;
            }
            None => {
                std::fs::rename(&done.temp, &target).map_err(io_error("cannot rename", &target))?;
                remove_if_present(&sum_path)?;
            }
        }
        files.push(done.record);
    }
    fsync_dir(dir).map_err(io_error("cannot sync", dir))?;
    Ok(ArchiveRecord {
        name: name.to_string(),
        files,
    })
}

/// Packs several archives at once, up to one per core, biggest first, so Streebog keeps every
/// core busy. Results come back in the order given.
pub fn pack_archives(
    dir: &Path,
    archives: Vec<(String, Vec<PackEntry>)>,
    options: &PackOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<ArchiveRecord>, BundleError> {
    let mut order: Vec<usize> = (0..archives.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(archive_size(&archives[i].1)));
    let packed = try_map(&order, |&i| {
        let (name, entries) = &archives[i];
        pack_archive(dir, name, entries.clone(), options, progress).map(|record| (i, record))
    })?;
    let mut records: Vec<Option<ArchiveRecord>> = archives.iter().map(|_| None).collect();
    for (i, record) in packed {
        records[i] = Some(record);
    }
    Ok(records.into_iter().flatten().collect())
}

/// The archive files (whole or chunks) of `name` already in `dir`, sorted. Leftover temp
/// files of a crashed run are removed on the way.
fn existing_files(dir: &Path, name: &str) -> Result<Vec<String>, BundleError> {
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io_error("cannot create", dir))?;
            return Ok(Vec::new());
        }
        Err(e) => return Err(io_error("cannot list", dir)(e)),
    };
    let mut found = Vec::new();
    for item in listing {
        let item = item.map_err(io_error("cannot list", dir))?;
        let file = item.file_name().to_string_lossy().into_owned();
        if file.starts_with(name) && file.ends_with(TEMP_SUFFIX) {
            remove_if_present(&item.path())?;
            continue;
        }
        let ours = match parse_archive_file(&file) {
            Some(ArchiveFileName::Whole(archive)) | Some(ArchiveFileName::Chunk(archive, _)) => {
                archive == name
            }
            None => false,
        };
        if ours {
            found.push(file);
        }
    }
    found.sort();
    Ok(found)
}

const TEMP_SUFFIX: &str = ".ferry-tmp";

fn temp_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(TEMP_SUFFIX);
    PathBuf::from(name)
}

fn remove_if_present(path: &Path) -> Result<(), BundleError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io_error("cannot remove", path)(e))
        }
        _ => Ok(()),
    }
}

fn write_error(dir: &Path, name: &str, err: std::io::Error) -> BundleError {
    // The tar writer wraps the sink's and the reader's errors alike; keep the message and say
    // which archive was being written.
    BundleError::Io {
        action: "cannot write",
        path: dir.join(name),
        source: err,
    }
}

/// Reads exactly `remaining` bytes of a file: a file that changed size since it was listed
/// would otherwise corrupt the tar silently.
struct ExactFile {
    file: File,
    path: PathBuf,
    remaining: u64,
}

impl Read for ExactFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let limit = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..limit])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "{} is {} bytes shorter than expected",
                    self.path.display(),
                    self.remaining
                ),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// A file being written under its temporary name.
struct OutFile {
    name: String,
    temp: PathBuf,
    file: File,
    written: u64,
    sha256: Sha256Hasher,
    gost: Option<GostHasher>,
}

/// A file written completely, waiting for its rename.
struct Finished {
    temp: PathBuf,
    record: FileRecord,
}

/// The byte sink under the tar writer: cuts the stream into files and hashes each.
struct ChunkSink<'a> {
    dir: PathBuf,
    archive: String,
    options: PackOptions,
    progress: &'a (dyn Fn(u64) + Sync),
    current: Option<OutFile>,
    done: Vec<Finished>,
    complete: bool,
}

impl<'a> ChunkSink<'a> {
    fn new(
        dir: &Path,
        archive: &str,
        options: &PackOptions,
        progress: &'a (dyn Fn(u64) + Sync),
    ) -> Self {
        ChunkSink {
            dir: dir.to_path_buf(),
            archive: archive.to_string(),
            options: *options,
            progress,
            current: None,
            done: Vec::new(),
            complete: false,
        }
    }

    fn open_next(&mut self) -> std::io::Result<()> {
        let name = if self.options.chunk_size == 0 {
            self.archive.clone()
        } else {
            chunk_name(&self.archive, self.done.len())
        };
        let temp = temp_name(&self.dir.join(&name));
        let file = File::create(&temp)?;
        self.current = Some(OutFile {
            name,
            temp,
            file,
            written: 0,
            sha256: Sha256Hasher::new(),
            gost: self.options.gost.then(GostHasher::spawn),
        });
        Ok(())
    }

    fn close_current(&mut self) -> std::io::Result<()> {
        if let Some(out) = self.current.take() {
            out.file.sync_all()?;
            self.done.push(Finished {
                temp: out.temp,
                record: FileRecord {
                    name: out.name,
                    size: out.written,
                    sha256: out.sha256.finish().hex().to_string(),
                    gost: out.gost.map(GostHasher::finish),
                },
            });
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<Finished>, BundleError> {
        let path = self.dir.join(&self.archive);
        if self.current.is_none() && self.done.is_empty() {
            self.open_next().map_err(io_error("cannot write", &path))?;
        }
        self.close_current()
            .map_err(io_error("cannot write", &path))?;
        self.complete = true;
        Ok(std::mem::take(&mut self.done))
    }
}

impl Write for ChunkSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            if self.current.is_none() {
                self.open_next()?;
            }
            let limit = self.options.chunk_size;
            let out = self.current.as_mut().expect("opened above");
            let room = if limit == 0 {
                u64::MAX
            } else {
                limit - out.written
            };
            if room == 0 {
                self.close_current()?;
                continue;
            }
            let n = rest.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            let (part, tail) = rest.split_at(n);
            out.file.write_all(part)?;
            out.sha256.update(part);
            if let Some(gost) = &mut out.gost {
                gost.update(Bytes::copy_from_slice(part));
            }
            out.written += n as u64;
            (self.progress)(n as u64);
            rest = tail;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ChunkSink<'_> {
    fn drop(&mut self) {
        if self.complete {
            return;
        }
        // An interrupted pack leaves nothing behind, not even temp files.
        if let Some(out) = self.current.take() {
            let _ = std::fs::remove_file(&out.temp);
        }
        for done in &self.done {
            let _ = std::fs::remove_file(&done.temp);
        }
    }
}
