//! The archive plan: every entry of an archive with its exact offset, and the files (one `.tar`
//! or numbered chunks) its bytes fall in, known before a single byte is written. The tar is
//! deterministic (sorted names, fixed GNU headers), so sizes alone fix the whole layout; that
//! lets a pull download every blob straight into its place.

use std::io::Write;

use bytes::Bytes;

use super::BundleError;
use super::entry_path::EntryPath;
use super::index::check_entry_path;
use super::metadata::BlobRecord;
use super::names::chunk_name;
use crate::digest::Digest;
use crate::manifest::SIZE_LIMIT;

/// Bytes of a tar block.
const BLOCK: u64 = 512;
/// The end-of-archive marker: two zero blocks.
const END_MARKER: u64 = 2 * BLOCK;
/// Longest path that fits a GNU header's name field; longer ones get a long-name entry.
const NAME_FIELD: usize = 100;

/// What an entry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryContent {
    /// Bytes known when planning: `oci-layout`, `index.json`, manifests (shared with the plan
    /// that holds them).
    Bytes(Bytes),
    /// Bytes known when planning, already written into the archive's files: only their size
    /// is kept, so a writer does not hold every manifest and `index.json` for the whole run.
    Written(u64),
    /// A blob fetched from somewhere by digest and checked against it on the way in.
    Blob {
        /// Its digest.
        digest: Digest,
        /// Its size.
        size: u64,
    },
}

impl EntryContent {
    /// The entry's data size.
    pub fn size(&self) -> u64 {
        match self {
            EntryContent::Bytes(bytes) => bytes.len() as u64,
            EntryContent::Written(size) | EntryContent::Blob { size, .. } => *size,
        }
    }
}

/// One entry of an archive, placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEntry {
    /// Its path inside the archive.
    pub path: EntryPath,
    /// Its content.
    pub content: EntryContent,
    /// Where its first header block starts in the archive.
    pub header_offset: u64,
    /// Where its first data byte is.
    pub data_offset: u64,
}

impl PlannedEntry {
    /// Data bytes.
    pub fn size(&self) -> u64 {
        self.content.size()
    }

    /// The header block(s) in front of the data, as the tar crate writes them: GNU format,
    /// mode 0644, owner 0, mtime 0, and a `././@LongLink` entry first for long names.
    pub fn header(&self) -> std::io::Result<Vec<u8>> {
        let mut header = tar::Header::new_gnu();
        header.set_size(self.size());
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        let mut builder = tar::Builder::new(Vec::new());
        builder.append_data(&mut header, self.path.to_string(), std::io::empty())?;
        let mut bytes = builder.into_inner()?;
        bytes.truncate(bytes.len() - END_MARKER as usize);
        debug_assert_eq!(bytes.len() as u64, header_len(self.path.len()));
        Ok(bytes)
    }
}

/// One file of an archive on disk: the whole tar, or one chunk of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// Its name in the bundle directory.
    pub name: String,
    /// Where it starts in the archive's byte stream.
    pub start: u64,
    /// Its size.
    pub size: u64,
}

impl PlannedFile {
    /// Where it ends in the archive's byte stream.
    pub fn end(&self) -> u64 {
        self.start + self.size
    }
}

/// A part of an archive's byte range that lies in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRange {
    /// The file's index in [`ArchivePlan::files`].
    pub file: usize,
    /// Offset inside that file.
    pub offset: u64,
    /// Bytes.
    pub len: u64,
    /// How far into the requested range this part starts.
    pub skip: u64,
}

/// An archive, laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivePlan {
    /// Its name (`platform.tar`).
    pub name: String,
    /// Its entries, sorted bytewise by path.
    pub entries: Vec<PlannedEntry>,
    /// Its files in order.
    pub files: Vec<PlannedFile>,
    /// Its total size.
    pub size: u64,
}

/// The largest archive laid out (1 EiB): far beyond any disk, far below an overflow.
const ARCHIVE_LIMIT: u64 = 1 << 60;
/// The most files one archive is cut into.
const MAX_FILES: u64 = 1_000_000;

/// Header bytes for an entry whose path has `path_len` bytes.
fn header_len(path_len: usize) -> u64 {
    if path_len > NAME_FIELD {
        // The long-name entry: its header, then the name and a NUL padded to a block.
        BLOCK + (path_len as u64 + 1).div_ceil(BLOCK) * BLOCK + BLOCK
    } else {
        BLOCK
    }
}

/// The exact size of a tar holding entries of these (path length, data size) pairs, as
/// [`ArchivePlan`] lays it out.
pub fn tar_size(entries: impl IntoIterator<Item = (usize, u64)>) -> u64 {
    entries
        .into_iter()
        .map(|(path_len, size)| header_len(path_len) + size.div_ceil(BLOCK) * BLOCK)
        .sum::<u64>()
        + END_MARKER
}

impl ArchivePlan {
    /// Lays out `name` from `(path, content)` pairs: sorted, checked (no duplicates, nothing
    /// that could escape the bundle), placed, and cut into files of `chunk_size` bytes (0 = one
    /// `.tar`).
    pub fn new(
        name: &str,
        entries: Vec<(EntryPath, EntryContent)>,
        chunk_size: u64,
    ) -> Result<ArchivePlan, BundleError> {
        let mut entries = entries;
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let refuse = |entry: &str, reason| BundleError::UnsafeEntry {
            archive: name.to_string(),
            entry: entry.to_string(),
            reason,
        };
        for pair in entries.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(refuse(&pair[0].0.to_string(), "the path appears twice"));
            }
        }
        let mut placed = Vec::with_capacity(entries.len());
        let mut offset = 0;
        for (path, content) in entries {
            let text = path.to_string();
            let normal = check_entry_path(&text).map_err(|reason| refuse(&text, reason))?;
            if normal != text {
                return Err(refuse(&text, "the path is not in normal form"));
            }
            let header_offset = offset;
            let data_offset = header_offset + header_len(path.len());
            // Sizes come from manifests and state files: one no blob has must not wrap.
            offset = content
                .size()
                .checked_next_multiple_of(BLOCK)
                .filter(|_| content.size() <= SIZE_LIMIT)
                .and_then(|padded| data_offset.checked_add(padded))
                .filter(|end| *end <= ARCHIVE_LIMIT)
                .ok_or_else(|| refuse(&text, "its size is larger than any archive can be"))?;
            placed.push(PlannedEntry {
                path,
                content,
                header_offset,
                data_offset,
            });
        }
        let size = offset + END_MARKER;
        if chunk_size != 0 && size / chunk_size > MAX_FILES {
            return Err(refuse(name, "the chunk size cuts it into too many files"));
        }
        Ok(ArchivePlan {
            name: name.to_string(),
            entries: placed,
            files: cut(name, size, chunk_size),
            size,
        })
    }

    /// The parts of `offset..offset + len` of the archive, file by file.
    pub fn ranges(&self, offset: u64, len: u64) -> Vec<FileRange> {
        let end = offset + len;
        let first = self.files.partition_point(|f| f.end() <= offset);
        self.files[first..]
            .iter()
            .enumerate()
            .take_while(|(_, f)| f.start < end)
            .map(|(i, f)| {
                let from = offset.max(f.start);
                let to = end.min(f.end());
                FileRange {
                    file: first + i,
                    offset: from - f.start,
                    len: to - from,
                    skip: from - offset,
                }
            })
            .collect()
    }

    /// Every blob and manifest the archive holds (entries named `…/blobs/sha256/<hex>`), each
    /// once, sorted by digest.
    pub fn blobs(&self) -> Vec<BlobRecord> {
        let mut blobs: Vec<BlobRecord> = self
            .entries
            .iter()
            .filter_map(|e| {
                Some(BlobRecord {
                    digest: e.path.digest()?.clone(),
                    size: e.size(),
                })
            })
            .collect();
        blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
        blobs.dedup();
        blobs
    }

    /// The index of the file holding archive byte `offset`.
    pub fn file_at(&self, offset: u64) -> usize {
        self.files
            .partition_point(|f| f.end() <= offset)
            .min(self.files.len() - 1)
    }

    /// The bytes known at plan time, in archive order: every header, and the data of every
    /// [`EntryContent::Bytes`] entry. Padding and the end marker are zeros and are left to the
    /// file being created at its full length.
    pub fn fixed_bytes(
        &self,
        mut write: impl FnMut(u64, &[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        for entry in &self.entries {
            let mut header = entry.header()?;
            if let EntryContent::Bytes(bytes) = &entry.content {
                header.write_all(bytes)?;
            }
            write(entry.header_offset, &header)?;
        }
        Ok(())
    }

    /// Lets go of the bytes of every [`EntryContent::Bytes`] entry, keeping their sizes: for
    /// once [`ArchivePlan::fixed_bytes`] has written them.
    pub fn forget_fixed_bytes(&mut self) {
        for entry in &mut self.entries {
            if let EntryContent::Bytes(bytes) = &entry.content {
                entry.content = EntryContent::Written(bytes.len() as u64);
            }
        }
    }
}

/// The files of an archive of `size` bytes: one `.tar`, or chunks of exactly `chunk_size`
/// bytes but the last.
fn cut(name: &str, size: u64, chunk_size: u64) -> Vec<PlannedFile> {
    if chunk_size == 0 {
        return vec![PlannedFile {
            name: name.to_string(),
            start: 0,
            size,
        }];
    }
    (0..size.div_ceil(chunk_size))
        .map(|i| {
            let start = i * chunk_size;
            PlannedFile {
                name: chunk_name(name, i as usize),
                start,
                size: chunk_size.min(size - start),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(path: &str, n: usize) -> (EntryPath, EntryContent) {
        (path.into(), EntryContent::Bytes(vec![7; n].into()))
    }

    #[test]
    fn offsets_follow_the_tar_layout() {
        let long = format!("{}/x", "d".repeat(120));
        let plan = ArchivePlan::new(
            "t.tar",
            vec![bytes("b", 600), bytes("a", 0), bytes(&long, 1)],
            0,
        )
        .unwrap();
        let paths: Vec<String> = plan.entries.iter().map(|e| e.path.to_string()).collect();
        assert_eq!(paths, ["a", "b", long.as_str()]);
        assert_eq!(plan.entries[0].data_offset, 512);
        assert_eq!(plan.entries[1].header_offset, 512);
        assert_eq!(plan.entries[1].data_offset, 1024);
        assert_eq!(plan.entries[2].header_offset, 1024 + 1024);
        // Long-name header, the name padded to a block, then the real header.
        assert_eq!(plan.entries[2].data_offset, 2048 + 512 + 512 + 512);
        assert_eq!(plan.size, plan.entries[2].data_offset + 512 + 1024);
        assert_eq!(plan.size, tar_size([(1, 0), (1, 600), (long.len(), 1)]));
        for entry in &plan.entries {
            assert_eq!(
                entry.header().unwrap().len() as u64,
                entry.data_offset - entry.header_offset
            );
        }
    }

    #[test]
    fn chunks_are_exact_and_ranges_cross_them() {
        let plan = ArchivePlan::new("t.tar", vec![bytes("a", 3000)], 1000).unwrap();
        assert_eq!(plan.size, 512 + 3072 + 1024);
        let sizes: Vec<u64> = plan.files.iter().map(|f| f.size).collect();
        assert_eq!(sizes, [1000, 1000, 1000, 1000, 608]);
        assert_eq!(plan.files[4].name, "t.tar.0004.chunk");
        let parts = plan.ranges(512, 3000);
        assert_eq!(
            parts,
            [
                FileRange {
                    file: 0,
                    offset: 512,
                    len: 488,
                    skip: 0
                },
                FileRange {
                    file: 1,
                    offset: 0,
                    len: 1000,
                    skip: 488
                },
                FileRange {
                    file: 2,
                    offset: 0,
                    len: 1000,
                    skip: 1488
                },
                FileRange {
                    file: 3,
                    offset: 0,
                    len: 512,
                    skip: 2488
                },
            ]
        );
        assert_eq!(plan.file_at(999), 0);
        assert_eq!(plan.file_at(1000), 1);
        assert_eq!(plan.file_at(plan.size - 1), 4);
    }

    #[test]
    fn duplicate_and_escaping_paths_are_refused() {
        let twice = ArchivePlan::new("t.tar", vec![bytes("a", 1), bytes("a", 2)], 0);
        assert!(matches!(twice, Err(BundleError::UnsafeEntry { .. })));
        let escape = ArchivePlan::new("t.tar", vec![bytes("../a", 1)], 0);
        assert!(matches!(escape, Err(BundleError::UnsafeEntry { .. })));
        let odd = ArchivePlan::new("t.tar", vec![bytes("./a", 1)], 0);
        assert!(matches!(odd, Err(BundleError::UnsafeEntry { .. })));
    }
}
