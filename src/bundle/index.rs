//! The tar index: one pass over an archive's headers, seeking over the data, to learn where
//! every entry's bytes are. Entries are read in place (also across chunk files), never
//! extracted, and anything that could escape or alias a path is refused.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};

use super::BundleError;
use super::reader::Archive;
use crate::segment::BlobSource;
use crate::tar_entries::{EXTENSION_TOO_LARGE, NamedEntry, RawEntries, TarEntryError};

/// Where an entry's data sits in its archive's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryLocation {
    /// Offset of the first data byte.
    pub offset: u64,
    /// Data length.
    pub size: u64,
}

/// Every regular file of an archive, by normalised path.
#[derive(Debug, Clone)]
pub struct TarIndex {
    entries: BTreeMap<String, EntryLocation>,
    source: BlobSource,
}

impl TarIndex {
    /// Reads the headers of `archive`. Absolute paths, `..`, links, devices, sparse files and
    /// duplicate paths are refused with the entry named; so is a tar that ends early.
    pub fn read(archive: &Archive) -> Result<TarIndex, BundleError> {
        let source = archive.source();
        let total = source.len();
        let bad_tar = |at: u64, reason: String| {
            // A problem at the very end (no end marker) lies past every byte: the last file.
            let mut files = archive.files_holding(at, 512);
            if files.is_empty() {
                files.extend(archive.files.last().map(|f| f.name.as_str()));
            }
            BundleError::BadTar {
                archive: archive.name.clone(),
                file: files.join(", "),
                reason,
            }
        };
        let unsafe_entry = |entry: &str, reason: &'static str| BundleError::UnsafeEntry {
            archive: archive.name.clone(),
            entry: crate::report::printable(entry),
            reason,
        };
        let mut tar = tar::Archive::new(source.reader());
        let mut entries = BTreeMap::new();
        let mut iter = RawEntries::new(
            tar.entries_with_seek()
                .map_err(|e| bad_tar(0, e.to_string()))?,
        );
        for named in iter.by_ref() {
            let NamedEntry { name, entry } = named.map_err(|e| match e {
                TarEntryError::ExtensionTooLarge { entry, .. } => {
                    unsafe_entry(&entry, EXTENSION_TOO_LARGE)
                }
                other => bad_tar(other.offset(), other.to_string()),
            })?;
            let kind = entry.header().entry_type();
            let offset = entry.raw_file_position();
            let size = entry.size();
            if kind.is_gnu_longlink() {
                return Err(unsafe_entry(
                    &String::from_utf8_lossy(&entry.path_bytes()),
                    "hard and symbolic links are not allowed",
                ));
            }
            let checked = check_entry_path(&name);
            if kind == tar::EntryType::Directory {
                // GNU tar writes `./` for the root; directories carry no data ferry reads.
                if let Err(reason) = checked
                    && reason != EMPTY_PATH
                {
                    return Err(unsafe_entry(&name, reason));
                }
                continue;
            }
            let path = checked.map_err(|reason| unsafe_entry(&name, reason))?;
            match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => {}
                tar::EntryType::Symlink => {
                    return Err(unsafe_entry(&name, "symbolic links are not allowed"));
                }
                tar::EntryType::Link => {
                    return Err(unsafe_entry(&name, "hard links are not allowed"));
                }
                tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                    return Err(unsafe_entry(&name, "device files are not allowed"));
                }
                tar::EntryType::GNUSparse => {
                    return Err(unsafe_entry(&name, "sparse files are not allowed"));
                }
                _ => return Err(unsafe_entry(&name, "unsupported entry type")),
            }
            if uppercase_blob_name(&path) {
                return Err(unsafe_entry(
                    &name,
                    "a blob is named by its digest in lowercase hex; an uppercase name is no \
                     digest (and names the same file as the lowercase one on some disks)",
                ));
            }
            if offset.saturating_add(size) > total {
                return Err(bad_tar(
                    offset,
                    format!("entry '{name}' runs past the end of the archive (truncated?)"),
                ));
            }
            if entries
                .insert(path, EntryLocation { offset, size })
                .is_some()
            {
                return Err(unsafe_entry(&name, "the path appears twice"));
            }
        }
        // The marker follows the data of the last entry.
        let end = iter.end();
        drop(tar);
        // A tar cut at a header boundary reads as a shorter valid tar; the end-of-archive
        // marker (two zero blocks) tells the two apart.
        let mut marker = Vec::with_capacity(1024);
        let mut reader = source.reader();
        reader
            .seek(SeekFrom::Start(end))
            .and_then(|_| reader.by_ref().take(1024).read_to_end(&mut marker))
            .map_err(|e| bad_tar(end, e.to_string()))?;
        if marker.len() < 1024 || marker.iter().any(|&b| b != 0) {
            return Err(bad_tar(
                end,
                "it ends without the end-of-archive marker (truncated?)".into(),
            ));
        }
        Ok(TarIndex { entries, source })
    }

    /// Where the entry at `path` is.
    pub fn get(&self, path: &str) -> Option<EntryLocation> {
        self.entries.get(path).copied()
    }

    /// Every entry, sorted by path.
    pub fn entries(&self) -> impl Iterator<Item = (&str, EntryLocation)> {
        self.entries.iter().map(|(p, l)| (p.as_str(), *l))
    }

    /// The bytes of an entry, wherever they are (also across two chunk files).
    pub fn bytes_of(&self, location: EntryLocation) -> BlobSource {
        self.source.slice(location.offset, location.size)
    }

    /// Reads a small entry whole; entries over `limit` bytes are refused.
    pub fn read_small(&self, location: EntryLocation, limit: u64) -> std::io::Result<Vec<u8>> {
        if location.size > limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} bytes is over the {limit}-byte limit", location.size),
            ));
        }
        let mut bytes = Vec::with_capacity(location.size as usize);
        self.bytes_of(location).reader().read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

const EMPTY_PATH: &str = "the path is empty";

/// True for `…/blobs/sha256/<hex>` whose 64 hex digits hold an uppercase one.
fn uppercase_blob_name(path: &str) -> bool {
    let mut parts = path.rsplit('/');
    let (Some(hex), Some("sha256"), Some("blobs")) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    hex.len() == 64
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && hex.bytes().any(|b| b.is_ascii_uppercase())
}

/// Checks an entry path and returns it normalised (`./` and `.` parts and trailing `/`
/// dropped). The error says why the path is refused.
pub(crate) fn check_entry_path(path: &str) -> Result<String, &'static str> {
    if path.starts_with('/') {
        return Err("absolute paths are not allowed");
    }
    if path.contains('\0') {
        return Err("the path holds a NUL byte");
    }
    if path.chars().any(char::is_control) {
        return Err("the path holds a control character");
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err("'..' would climb out of the bundle"),
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return Err(EMPTY_PATH);
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_or_refused() {
        assert_eq!(check_entry_path("./a/b").unwrap(), "a/b");
        assert_eq!(check_entry_path("a//b/").unwrap(), "a/b");
        assert!(check_entry_path("/etc/passwd").is_err());
        assert!(check_entry_path("a/../../x").is_err());
        assert!(check_entry_path("..").is_err());
        assert!(check_entry_path("./").is_err());
    }
}
