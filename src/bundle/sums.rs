//! Checksums of bundle files: the `SHA256SUMS` and `GOSTSUMS` lists that standard tools check,
//! d8's `.gostsum` files, and hashing a file to compare with them.

use std::path::Path;

use super::metadata::ArchiveRecord;
use super::{BundleError, io_error};
use crate::digest::{FileSums, hash_reader};

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
