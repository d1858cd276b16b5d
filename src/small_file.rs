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

/// Like [`read_small`], but the file is handed over open, to be read as a stream (a file of
/// tens of MiB parsed without its text held whole). A reader that reads past `limit` bytes
/// gets an error.
pub fn open_small(path: &Path, limit: u64) -> std::io::Result<Option<impl Read + use<>>> {
    let Some(file) = open_checked(path, limit, rustix::fs::OFlags::NOFOLLOW)? else {
        return Ok(None);
    };
    Ok(Some(Capped {
        inner: file.take(limit + 1),
        limit,
    }))
}

/// A reader that fails once more than `limit` bytes have come through: a file that grew
/// after it was opened is refused, not cut short.
struct Capped<R> {
    inner: std::io::Take<R>,
    limit: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.inner.limit() == 0 {
            return Err(too_large(self.limit));
        }
        Ok(n)
    }
}

fn too_large(limit: u64) -> std::io::Error {
    std::io::Error::other(format!(
        "it is larger than {}",
        crate::report::human_bytes(limit)
    ))
}

fn read_opened(
    path: &Path,
    limit: u64,
    follow: rustix::fs::OFlags,
) -> std::io::Result<Option<Vec<u8>>> {
    let Some(file) = open_checked(path, limit, follow)? else {
        return Ok(None);
    };
    let mut bytes = Vec::with_capacity(file.metadata()?.len() as usize);
    // A file that grows while read is cut at the limit and then refused.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(Some(bytes))
}

/// `path` opened if it is a regular file of at most `limit` bytes; `None` when it does not
/// exist.
fn open_checked(
    path: &Path,
    limit: u64,
    follow: rustix::fs::OFlags,
) -> std::io::Result<Option<std::fs::File>> {
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
        return Err(too_large(limit));
    }
    Ok(Some(file))
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

    #[test]
    fn an_opened_small_file_reads_whole_and_no_further_than_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"hello").unwrap();
        let mut text = String::new();
        let mut opened = open_small(&file, 5).unwrap().unwrap();
        opened.read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello");
        assert!(open_small(&file, 4).is_err(), "over the limit when opened");
        assert!(open_small(&dir.path().join("none"), 4).unwrap().is_none());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(open_small(&link, 100).is_err());
        // Grown past the limit after it was opened: an error, not a silent cut.
        let mut opened = open_small(&file, 5).unwrap().unwrap();
        std::fs::write(&file, b"hello, and more").unwrap();
        let mut grown = Vec::new();
        let err = opened.read_to_end(&mut grown).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }
}
