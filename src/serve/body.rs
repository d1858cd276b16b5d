//! Blob bytes as a response body: read from the archive files in pieces on the blocking pool.
//! A large piece holds a share of one budget for the whole server until the connection has
//! written and dropped it; when the budget is spent (many clients reading slowly at once),
//! pieces are small instead. So memory stays bounded however many clients stall, and no client
//! waits for another's budget. (Reading through tokio's async file in the body's own small
//! buffers costs a thread hop every 64 KiB and was a quarter slower in `bench.sh serve`.)

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::segment::BlobSource;

/// Bytes read from a file at a time, within the budget.
pub const PIECE: usize = 256 * 1024;
/// Bytes read at a time when the budget is spent.
const SMALL_PIECE: usize = 16 * 1024;

/// The bytes of blobs read and not yet written to clients, for the whole server, in pieces.
pub struct Budget(Arc<Semaphore>);

impl Budget {
    /// A budget of `bytes` (at least one piece).
    pub fn new(bytes: usize) -> Budget {
        Budget(Arc::new(Semaphore::new((bytes / PIECE).max(1))))
    }
}

/// A piece's bytes and its share of the budget, given back when the piece is dropped.
struct Piece {
    bytes: Vec<u8>,
    _share: Option<OwnedSemaphorePermit>,
}

impl AsRef<[u8]> for Piece {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

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
    fn next_piece(&mut self, size: usize) -> std::io::Result<Option<Vec<u8>>> {
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
            let want = (segment.len - self.done).min(size as u64);
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
            return Ok(Some(buffer));
        }
    }
}

/// The bytes of `source`, piece by piece: large ones while `budget` has room, small ones
/// otherwise.
pub fn pieces(
    source: BlobSource,
    budget: &Budget,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + use<> {
    let cursor = Cursor {
        source,
        segment: 0,
        done: 0,
        file: None,
    };
    let budget = budget.0.clone();
    futures_util::stream::try_unfold(cursor, move |mut cursor| {
        let budget = budget.clone();
        async move {
            let share = budget.try_acquire_owned().ok();
            let size = if share.is_some() { PIECE } else { SMALL_PIECE };
            tokio::task::spawn_blocking(move || {
                Ok(cursor.next_piece(size)?.map(|bytes| {
                    let piece = Piece {
                        bytes,
                        _share: share,
                    };
                    (Bytes::from_owner(piece), cursor)
                }))
            })
            .await
            .map_err(std::io::Error::other)?
        }
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
                path: a.clone().into(),
                offset: 5,
                len: (PIECE * 2) as u64,
            },
            FileSegment {
                path: b.clone().into(),
                offset: 2,
                len: 3,
            },
        ]);
        // Collecting holds every piece: a budget for all of them.
        let budget = Budget::new(PIECE * 4);
        let got: Vec<Bytes> = pieces(source, &budget).try_collect().await.unwrap();
        let joined: Vec<u8> = got.concat();
        let mut expected = big[5..5 + PIECE * 2].to_vec();
        expected.extend_from_slice(b"234");
        assert_eq!(joined, expected);

        drop(got);
        let short = BlobSource::segments(vec![FileSegment {
            path: b.into(),
            offset: 8,
            len: 5,
        }]);
        let err = pieces(short, &budget)
            .try_collect::<Vec<Bytes>>()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn pieces_are_small_while_the_budget_is_spent() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, vec![7u8; PIECE * 3]).unwrap();
        let budget = Budget::new(PIECE * 2);
        let mut stream = Box::pin(pieces(BlobSource::file(file, (PIECE * 3) as u64), &budget));
        let first = stream.try_next().await.unwrap().unwrap();
        let second = stream.try_next().await.unwrap().unwrap();
        assert_eq!((first.len(), second.len()), (PIECE, PIECE));
        // Both large pieces are held: the next one is small, and does not wait.
        let third = stream.try_next().await.unwrap().unwrap();
        assert_eq!(third.len(), SMALL_PIECE);
        drop(first);
        let fourth = stream.try_next().await.unwrap().unwrap();
        assert_eq!(fourth.len(), PIECE - SMALL_PIECE);
    }
}
