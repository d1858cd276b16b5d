//! Checksums of bundle files: the `SHA256SUMS` and `GOSTSUMS` lists that standard tools check,
//! d8's `.gostsum` files, and hashing a file to compare with them.

use std::path::Path;

use super::{BundleError, io_error};
use crate::digest::{FileSums, hash_reader};

/// `sha256sum` format: `<hex>  <name>` for every (name, hex) pair, in the order given.
pub fn sha256sums<'a>(sums: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    sums.into_iter()
        .map(|(name, hex)| format!("{hex}  {name}\n"))
        .collect()
}

/// `GOST12-256 (<name>) = <hex>` for every (name, hex) pair (the BSD form `rhash -c` checks
/// without being told the algorithm), or `None` when there is none.
pub fn gostsums<'a>(sums: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<String> {
    let lines: String = sums
        .into_iter()
        .map(|(name, hex)| format!("GOST12-256 ({name}) = {hex}\n"))
        .collect();
    (!lines.is_empty()).then_some(lines)
}

/// Sum files are small; a larger one is refused rather than read.
const SUM_FILE_LIMIT: u64 = 16 << 20;

/// A small text file (a sum list, a `.gostsum`) read whole, after checking that it is a
/// regular file of a sane size; `None` when there is no file.
pub fn read_small_text(path: &Path) -> Result<Option<String>, BundleError> {
    let Some(bytes) = crate::small_file::read_small(path, SUM_FILE_LIMIT)
        .map_err(io_error("refusing to read", path))?
    else {
        return Ok(None);
    };
    String::from_utf8(bytes).map(Some).map_err(|_| {
        BundleError::Io(crate::file_error::FileError::other(
            "cannot read",
            path,
            "it is not text (UTF-8)",
        ))
    })
}

/// The content of a `.gostsum` file: the hex digest, trimmed; `None` when there is no file.
pub fn read_gostsum(path: &Path) -> Result<Option<String>, BundleError> {
    Ok(read_small_text(path)?.map(|text| text.trim().to_ascii_lowercase()))
}

/// The (file, lowercase hex) pairs of a `sha256sum` list (`<hex>  <name>`, or `<hex> *<name>`
/// as `sha256sum -b` writes it) or of a `GOSTSUMS` list (`GOST12-256 (<name>) = <hex>`); names
/// lose a leading `./` (`sha256sum ./*.tar`). Lines of another form are left out.
pub fn parse_sum_list(text: &str, gost: bool) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let (name, hex) = if gost {
                let rest = line.strip_prefix("GOST12-256 (")?;
                let (name, hex) = rest.rsplit_once(") = ")?;
                (name, hex.trim())
            } else {
                let (hex, rest) = line.split_once(' ')?;
                let name = rest.strip_prefix(' ').or_else(|| rest.strip_prefix('*'))?;
                (name, hex)
            };
            let name = name.strip_prefix("./").unwrap_or(name);
            Some((name.to_string(), hex.to_ascii_lowercase()))
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_lines_are_read_as_sha256sum_and_rhash_write_them() {
        let hex = "ab".repeat(32);
        let text = format!(
            "{hex}  platform.tar\n{hex} *module-a.tar\r\n{hex}  ./security.tar\n{hex}  a b.tar\nnot a sum line\n"
        );
        let names: Vec<String> = parse_sum_list(&text, false)
            .into_iter()
            .map(|(name, sum)| {
                assert_eq!(sum, hex);
                name
            })
            .collect();
        assert_eq!(
            names,
            ["platform.tar", "module-a.tar", "security.tar", "a b.tar"]
        );
        let gost = format!("GOST12-256 (./platform.tar) = {}\r\n", hex.to_uppercase());
        assert_eq!(
            parse_sum_list(&gost, true),
            [("platform.tar".to_string(), hex.clone())]
        );
    }
}
