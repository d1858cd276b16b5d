//! File names in a bundle directory: archives, their chunks, and the checksum files beside them.

/// The name of chunk `number` of `archive` (`platform.tar` → `platform.tar.0003.chunk`).
pub fn chunk_name(archive: &str, number: usize) -> String {
    format!("{archive}.{number:04}.chunk")
}

/// The `.gostsum` file beside `file`.
pub fn gostsum_name(file: &str) -> String {
    format!("{file}{GOSTSUM_SUFFIX}")
}

/// What [`gostsum_name`] appends.
pub const GOSTSUM_SUFFIX: &str = ".gostsum";

/// What an archive file's name says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveFileName {
    /// A whole archive: `name.tar`.
    Whole(String),
    /// Chunk `number` of the archive `name.tar`.
    Chunk(String, usize),
}

/// Reads a file name as an archive or a chunk of one; anything else (sums, temp files,
/// `bundle.json`) is `None`. Chunk numbers have four or more digits, as d8 writes them.
pub fn parse_archive_file(name: &str) -> Option<ArchiveFileName> {
    if let Some(stem) = name.strip_suffix(".chunk") {
        let (archive, number) = stem.rsplit_once('.')?;
        if number.len() < 4 || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !archive.ends_with(".tar") || archive.len() == ".tar".len() {
            return None;
        }
        return Some(ArchiveFileName::Chunk(
            archive.to_string(),
            number.parse().ok()?,
        ));
    }
    (name.ends_with(".tar") && name.len() > ".tar".len())
        .then(|| ArchiveFileName::Whole(name.to_string()))
}

/// Where a layout at `path` in a bundle appears at a registry: the same path, except that
/// `modules_path` (`--modules-path-suffix`) replaces a leading module `catalog` path. Push and
/// serve name repositories alike.
pub fn target_path(path: &str, catalog: &str, modules_path: Option<&str>) -> String {
    match (modules_path, path.strip_prefix(catalog)) {
        (Some(to), Some(rest)) if rest.is_empty() || rest.starts_with('/') => {
            format!("{to}{rest}").trim_start_matches('/').to_string()
        }
        _ => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_names_round_trip() {
        assert_eq!(chunk_name("platform.tar", 3), "platform.tar.0003.chunk");
        assert_eq!(chunk_name("m.tar", 12345), "m.tar.12345.chunk");
        assert_eq!(
            parse_archive_file("platform.tar.0003.chunk"),
            Some(ArchiveFileName::Chunk("platform.tar".into(), 3))
        );
        assert_eq!(
            parse_archive_file("m.tar.12345.chunk"),
            Some(ArchiveFileName::Chunk("m.tar".into(), 12345))
        );
        assert_eq!(
            parse_archive_file("security.tar"),
            Some(ArchiveFileName::Whole("security.tar".into()))
        );
    }

    #[test]
    fn other_files_are_not_archives() {
        for name in [
            "bundle.json",
            "platform.tar.gostsum",
            "platform.tar.0000.chunk.gostsum",
            "platform.tar.tmp",
            "platform.tar.000.chunk",
            "platform.tar.00a0.chunk",
            ".tar",
            ".tar.0000.chunk",
            "x.0000.chunk",
        ] {
            assert_eq!(parse_archive_file(name), None, "{name}");
        }
    }

    #[test]
    fn only_the_modules_tree_moves() {
        let remap = |path, to| target_path(path, "modules", to);
        assert_eq!(remap("modules/console", Some("mods")), "mods/console");
        assert_eq!(remap("modules", Some("x/mods")), "x/mods");
        assert_eq!(remap("modulesque", Some("mods")), "modulesque");
        assert_eq!(remap("install", Some("mods")), "install");
        assert_eq!(remap("modules/a", None), "modules/a");
    }
}
