//! Small files ferry is handed or keeps beside its own (state, journal, sum lists,
//! `bundle.json`, credentials named by an image set): read whole, but only when they are regular
//! files. A link is not followed, a FIFO or a device is refused without waiting on it, and a
//! file over the caller's limit is refused rather than read.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Reads `path` whole: `Ok(None)` when it does not exist; an error when it is a link, not a
/// regular file, or larger than `limit` bytes.
pub fn read_small(path: &Path, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    read_opened(path, limit, rustix::fs::OFlags::NOFOLLOW)
}

/// Like [`read_small`], but a link is followed: for files the user names on the command line
/// (a TLS certificate is usually a link into a store of renewed ones).
pub fn read_small_linked(path: &Path, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    read_opened(path, limit, rustix::fs::OFlags::empty())
}

fn read_opened(
    path: &Path,
    limit: u64,
    follow: rustix::fs::OFlags,
) -> std::io::Result<Option<Vec<u8>>> {
    let flags = follow | rustix::fs::OFlags::NONBLOCK;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(std::io::Error::other("it is a symbolic link"));
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    if meta.len() > limit {
        return Err(std::io::Error::other(format!(
            "it is larger than {}",
            crate::report::human_bytes(limit)
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // A file that grows while read is cut at the limit and then refused.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "it is larger than {}",
            crate::report::human_bytes(limit)
        )));
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_small_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"hello").unwrap();
        assert_eq!(read_small(&file, 5).unwrap().unwrap(), b"hello");
        assert!(read_small(&file, 4).is_err());
        assert!(read_small(&dir.path().join("none"), 4).unwrap().is_none());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(
            read_small(&link, 100)
                .unwrap_err()
                .to_string()
                .contains("symbolic link")
        );
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        assert!(read_small(&fifo, 100).is_err(), "a FIFO is refused at once");
        assert!(read_small(Path::new("/dev/zero"), 100).is_err());
        assert_eq!(read_small_linked(&link, 100).unwrap().unwrap(), b"hello");
        assert!(read_small_linked(&fifo, 100).is_err());
    }
}
