//! Blob bytes as a response body: read from the archive files in large pieces on the blocking
//! pool, one piece in flight per response, so memory stays a few hundred KiB per client
//! whatever the blob's size. (Reading through tokio's async file in the body's own small
//! buffers costs a thread hop every 64 KiB and was a quarter slower in `bench.sh serve`.)

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use bytes::Bytes;
use futures_util::Stream;

use crate::segment::BlobSource;

/// Bytes read from a file at a time.
const PIECE: usize = 256 * 1024;

/// Where reading has got to.
struct Cursor {
    source: BlobSource,
    segment: usize,
    done: u64,
    file: Option<File>,
}

impl Cursor {
    /// The next piece, or `None` at the end. A file that ends before the bundle said it
    /// would is an error, so a client never gets a short blob that looks whole.
    fn next_piece(&mut self) -> std::io::Result<Option<Bytes>> {
        loop {
            let Some(segment) = self.source.parts().get(self.segment) else {
                return Ok(None);
            };
            if self.done >= segment.len {
                self.segment += 1;
                self.done = 0;
                self.file = None;
                continue;
            }
            let file = match &mut self.file {
                Some(file) => file,
                None => {
                    let mut file = File::open(&segment.path)?;
                    file.seek(SeekFrom::Start(segment.offset))?;
                    self.file.insert(file)
                }
            };
            let want = (segment.len - self.done).min(PIECE as u64);
            // read_to_end fills spare capacity without zeroing it first.
            let mut buffer = Vec::with_capacity(want as usize);
            let read = file.take(want).read_to_end(&mut buffer)?;
            if read == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "{} ends before the bundle says it does",
                        segment.path.display()
                    ),
                ));
            }
            self.done += read as u64;
            return Ok(Some(Bytes::from(buffer)));
        }
    }
}

/// The bytes of `source`, piece by piece.
pub fn pieces(source: BlobSource) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
    let cursor = Cursor {
        source,
        segment: 0,
        done: 0,
        file: None,
    };
    futures_util::stream::try_unfold(cursor, |mut cursor| async move {
        tokio::task::spawn_blocking(move || Ok(cursor.next_piece()?.map(|piece| (piece, cursor))))
            .await
            .map_err(std::io::Error::other)?
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::FileSegment;
    use futures_util::TryStreamExt;

    #[tokio::test]
    async fn pieces_cross_files_and_a_short_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        let big: Vec<u8> = (0..PIECE * 2 + 10).map(|i| (i % 251) as u8).collect();
        std::fs::write(&a, &big).unwrap();
        std::fs::write(&b, b"0123456789").unwrap();
        let source = BlobSource::segments(vec![
            FileSegment {
                path: a.clone(),
                offset: 5,
                len: (PIECE * 2) as u64,
            },
            FileSegment {
                path: b.clone(),
                offset: 2,
                len: 3,
            },
        ]);
        let got: Vec<Bytes> = pieces(source).try_collect().await.unwrap();
        let joined: Vec<u8> = got.concat();
        let mut expected = big[5..5 + PIECE * 2].to_vec();
        expected.extend_from_slice(b"234");
        assert_eq!(joined, expected);

        let short = BlobSource::segments(vec![FileSegment {
            path: b,
            offset: 8,
            len: 5,
        }]);
        let err = pieces(short).try_collect::<Vec<Bytes>>().await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
