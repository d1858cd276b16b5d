//! Checksums of bundle files: the `SHA256SUMS` and `GOSTSUMS` lists that standard tools check,
//! d8's `.gostsum` files, and hashing a file to compare with them.

use std::io::Read;
use std::path::Path;

use bytes::BytesMut;

use super::metadata::ArchiveRecord;
use super::{BundleError, io_error};
use crate::digest::{GostHasher, Sha256Hasher};

/// `sha256sum` format: `<hex>  <name>` per file, in bundle order.
pub fn sha256sums(archives: &[ArchiveRecord]) -> String {
    archives
        .iter()
        .flat_map(|a| &a.files)
        .map(|f| format!("{}  {}\n", f.sha256, f.name))
        .collect()
}

/// `GOST12-256 (<name>) = <hex>` per file (the BSD form `rhash -c` checks without being told
/// the algorithm), or `None` when no file has a Streebog sum.
pub fn gostsums(archives: &[ArchiveRecord]) -> Option<String> {
    let lines: String = archives
        .iter()
        .flat_map(|a| &a.files)
        .filter_map(|f| {
            f.gost
                .as_ref()
                .map(|g| format!("GOST12-256 ({}) = {g}\n", f.name))
        })
        .collect();
    (!lines.is_empty()).then_some(lines)
}

/// The content of a `.gostsum` file: the hex digest, trimmed; `None` when there is no file.
pub fn read_gostsum(path: &Path) -> Result<Option<String>, BundleError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_ascii_lowercase())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("cannot read", path)(e)),
    }
}

/// What hashing a file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSums {
    /// Bytes read.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// Streebog-256, lowercase hex, when asked for.
    pub gost: Option<String>,
}

/// Reads a file once, hashing SHA-256 inline and Streebog-256 (when `gost`) on another thread.
/// `progress` hears every buffer.
pub fn hash_file(
    path: &Path,
    gost: bool,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<FileSums, BundleError> {
    let file = std::fs::File::open(path).map_err(io_error("cannot read", path))?;
    hash_reader(file, gost, progress).map_err(io_error("cannot read", path))
}

/// [`hash_file`] for any byte stream (a blob inside an archive, say).
pub fn hash_reader(
    mut reader: impl Read,
    gost: bool,
    progress: &(dyn Fn(u64) + Sync),
) -> std::io::Result<FileSums> {
    const BUFFER: usize = 1 << 20;
    let mut sha256 = Sha256Hasher::new();
    let mut streebog = gost.then(GostHasher::spawn);
    let mut size = 0;
    loop {
        // A fresh buffer each time: the Streebog thread may still hold the last one.
        let mut buffer = BytesMut::zeroed(BUFFER);
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        buffer.truncate(n);
        sha256.update(&buffer);
        if let Some(hasher) = &mut streebog {
            hasher.update(buffer.freeze());
        }
        size += n as u64;
        progress(n as u64);
    }
    Ok(FileSums {
        size,
        sha256: sha256.finish().hex().to_string(),
        gost: streebog.map(GostHasher::finish),
    })
}
