//! Bytes that live in ranges of files on disk: a blob inside a layout, a tar entry, or an entry
//! that straddles two chunk files. Readers stream them; nothing is held whole in memory.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use smallvec::SmallVec;

use tokio::io::{AsyncRead, AsyncReadExt};

/// A contiguous run of bytes inside a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSegment {
    /// The file; shared by every segment cut from the same archive file, since a bundle of
    /// thousands of blobs names one file per blob.
    pub path: Arc<Path>,
    /// Where the run starts in the file.
    pub offset: u64,
    /// How many bytes it has.
    pub len: u64,
}

/// Where a run of bytes is: one or more file segments read in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlobSource {
    // Nearly every blob lies in one file: that one segment is held inline, not allocated.
    segments: SmallVec<[FileSegment; 1]>,
}

impl BlobSource {
    /// A whole file.
    pub fn file(path: impl Into<Arc<Path>>, len: u64) -> Self {
        BlobSource::segments(vec![FileSegment {
            path: path.into(),
            offset: 0,
            len,
        }])
    }

    /// Segments read one after another (a blob that straddles two chunk files).
    pub fn segments(segments: Vec<FileSegment>) -> Self {
        BlobSource {
            segments: SmallVec::from_vec(segments),
        }
    }

    /// The segments, in reading order.
    pub fn parts(&self) -> &[FileSegment] {
        &self.segments
    }

    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        self.segments
            .iter()
            .fold(0, |sum, s| sum.saturating_add(s.len))
    }

    /// True for an empty blob.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `len` bytes that start `offset` bytes in, clipped to what exists.
    pub fn slice(&self, mut offset: u64, mut len: u64) -> BlobSource {
        let mut segments = SmallVec::new();
        for segment in &self.segments {
            if len == 0 {
                break;
            }
            if offset >= segment.len {
                offset -= segment.len;
                continue;
            }
            let take = (segment.len - offset).min(len);
            segments.push(FileSegment {
                path: segment.path.clone(),
                offset: segment.offset + offset,
                len: take,
            });
            len -= take;
            offset = 0;
        }
        BlobSource { segments }
    }

    /// An async reader over the bytes from `skip` to the end.
    pub fn open_at(&self, mut skip: u64) -> std::io::Result<Pin<Box<dyn AsyncRead + Send>>> {
        let mut reader: Pin<Box<dyn AsyncRead + Send>> = Box::pin(tokio::io::empty());
        for segment in &self.segments {
            if skip >= segment.len {
                skip -= segment.len;
                continue;
            }
            let mut file = File::open(&segment.path)?;
            file.seek(SeekFrom::Start(segment.offset + skip))?;
            let part = tokio::fs::File::from_std(file).take(segment.len - skip);
            reader = Box::pin(reader.chain(part));
            skip = 0;
        }
        Ok(reader)
    }

    /// A blocking reader that can also seek, for code that runs on a blocking thread.
    pub fn reader(&self) -> SegmentReader {
        SegmentReader {
            source: self.clone(),
            position: 0,
            open: None,
        }
    }
}

/// Blocking `Read + Seek` over a [`BlobSource`]; opens one file at a time.
#[derive(Debug)]
pub struct SegmentReader {
    source: BlobSource,
    position: u64,
    /// The segment whose file is open, and where the file's cursor is.
    open: Option<(usize, File, u64)>,
}

impl SegmentReader {
    /// The segment holding `position` and where that segment starts in the stream.
    fn locate(&self) -> Option<(usize, u64)> {
        let mut start = 0;
        for (i, segment) in self.source.segments.iter().enumerate() {
            if self.position < start + segment.len {
                return Some((i, start));
            }
            start += segment.len;
        }
        None
    }
}

impl Read for SegmentReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some((index, start)) = self.locate() else {
            return Ok(0);
        };
        let segment = &self.source.segments[index];
        let within = self.position - start;
        let wanted = segment.offset + within;
        let reuse = matches!(&self.open, Some((i, _, at)) if *i == index && *at == wanted);
        if !reuse {
            let mut file = match self.open.take() {
                Some((i, file, _)) if i == index => file,
                _ => File::open(&segment.path)?,
            };
            file.seek(SeekFrom::Start(wanted))?;
            self.open = Some((index, file, wanted));
        }
        let (_, file, at) = self.open.as_mut().expect("opened above");
        let room = usize::try_from(segment.len - within).unwrap_or(usize::MAX);
        let limit = buf.len().min(room);
        let n = file.read(&mut buf[..limit])?;
        if n == 0 && limit > 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{} ends before its expected size", segment.path.display()),
            ));
        }
        *at += n as u64;
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for SegmentReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let len = self.source.len() as i128;
        let target = match to {
            SeekFrom::Start(n) => n as i128,
            SeekFrom::End(n) => len + n as i128,
            SeekFrom::Current(n) => self.position as i128 + n as i128,
        };
        if target < 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start",
            ));
        }
        self.position = target as u64;
        Ok(self.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn reads_and_seeks_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, b"0123456789").unwrap();
        std::fs::write(&b, b"abcdef").unwrap();
        let whole = BlobSource::segments(vec![
            FileSegment {
                path: a.clone().into(),
                offset: 0,
                len: 10,
            },
            FileSegment {
                path: b.clone().into(),
                offset: 0,
                len: 6,
            },
        ]);
        let mut all = String::new();
        whole.reader().read_to_string(&mut all).unwrap();
        assert_eq!(all, "0123456789abcdef");

        let middle = whole.slice(8, 5);
        assert_eq!(middle.parts().len(), 2);
        let mut text = String::new();
        middle.reader().read_to_string(&mut text).unwrap();
        assert_eq!(text, "89abc");

        let mut reader = whole.reader();
        reader.seek(SeekFrom::Start(12)).unwrap();
        let mut two = [0u8; 2];
        reader.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"cd");
        reader.seek(SeekFrom::Current(-10)).unwrap();
        reader.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"45");
    }

    #[test]
    fn a_short_file_is_an_error_not_a_silent_end() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"0123").unwrap();
        let source = BlobSource::file(a, 10);
        let mut out = Vec::new();
        let err = source.reader().read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn a_source_reads_across_segments_from_any_offset() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, b"xxHELLO").unwrap();
        std::fs::write(&b, b" WORLDyy").unwrap();
        let source = BlobSource::segments(vec![
            FileSegment {
                path: a.into(),
                offset: 2,
                len: 5,
            },
            FileSegment {
                path: b.into(),
                offset: 0,
                len: 6,
            },
        ]);
        assert_eq!(source.len(), 11);
        for skip in 0..=11u64 {
            let mut out = Vec::new();
            source
                .open_at(skip)
                .unwrap()
                .read_to_end(&mut out)
                .await
                .unwrap();
            assert_eq!(out, &b"HELLO WORLD"[skip as usize..]);
        }
    }
}
