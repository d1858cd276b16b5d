//! Content-addressed blob store on disk (`blobs/sha256/<hex>`), and the blob writer that hashes
//! while writing and publishes a blob only once its digest and size are proven.
//!
//! A blob is written to `<root>/.ferry-partial/<hex>` first. The partial file outlives a crash or
//! a dropped connection: the next writer for the same digest re-hashes what is there and carries
//! on from its end (the caller asks the server for the rest with a `Range` request). Only a
//! verified, fsynced blob is renamed to its final name, so a final name always means a good blob.

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};

use crate::digest::{Digest, Sha256Hasher};
use crate::file_error::FileError;

/// Size of the write buffer and of the reads that re-hash a partial blob (one per transfer in
/// flight: at `-j 64` these add up to 16 MiB).
const IO_BUFFER: usize = 256 << 10;

/// What can go wrong while storing a blob.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] FileError),
    /// The bytes received do not hash to the digest they were asked for.
    #[error("content of {expected} hashes to {actual}: the source sent wrong bytes")]
    DigestMismatch {
        /// The digest that was asked for.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// The source sent more or fewer bytes than the descriptor announces.
    #[error("{digest} should be {expected} bytes but {actual} arrived")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// The size in its descriptor.
        expected: u64,
        /// What arrived (at least this much, when too much was sent).
        actual: u64,
    },
}

impl StoreError {
    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
        let to_file_error = FileError::on(action, path);
        move |source| StoreError::Io(to_file_error(source))
    }
}

/// A directory holding blobs under `blobs/sha256/<hex>`: the blob part of an OCI image layout,
/// and the work store of a pull.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// A store rooted at `root`; directories are created when the first blob is written.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        BlobStore { root: root.into() }
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this digest lives (whether or not it is there).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.hex())
    }

    fn partial_dir(&self) -> PathBuf {
        self.root.join(".ferry-partial")
    }

    /// True when the blob is stored with the expected size. The content was verified when it was
    /// written; a full re-hash is the job of `verify`, not of every lookup.
    pub async fn contains(&self, digest: &Digest, size: u64) -> bool {
        match tokio::fs::metadata(self.path(digest)).await {
            Ok(meta) => meta.is_file() && meta.len() == size,
            Err(_) => false,
        }
    }

    /// True when the stored blob has the expected size and its bytes hash to its digest: for
    /// deciding to skip a copy, a file of the right size is not proof enough (an earlier
    /// writer outside ferry, a damaged disk).
    pub async fn contains_verified(&self, digest: &Digest, size: u64) -> bool {
        if !self.contains(digest, size).await {
            return false;
        }
        let path = self.path(digest);
        let expected = digest.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::File::open(&path)
                .ok()
                .and_then(|file| crate::digest::hash_reader(file, false, &|_| {}).ok())
                .is_some_and(|sums| sums.sha256 == expected.hex())
        })
        .await
        .unwrap_or(false)
    }

    /// Stores a small blob held in memory (a manifest or a config) and returns its digest.
    pub async fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        let path = self.path(&digest);
        if !self.contains(&digest, bytes.len() as u64).await {
            write_atomic(&path, bytes).await?;
        }
        Ok(digest)
    }

    /// Reads a small blob whole, checking that it hashes to its digest. `limit` bounds memory:
    /// a larger file is refused rather than read.
    pub async fn read_verified(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, StoreError> {
        let path = self.path(digest);
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(StoreError::io("cannot read", &path))?;
        if meta.len() > limit {
            return Err(StoreError::SizeMismatch {
                digest: digest.clone(),
                expected: limit,
                actual: meta.len(),
            });
        }
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(StoreError::io("cannot read", &path))?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Removes the directory of partial blobs when nothing is left in it, so a finished
    /// layout holds only what the OCI spec describes.
    pub async fn tidy(&self) {
        // Fails harmlessly when partial blobs remain for a later resume.
        let _ = tokio::fs::remove_dir(self.partial_dir()).await;
    }

    /// Opens a writer for a blob, resuming a partial file left by an earlier attempt.
    pub async fn writer(&self, digest: &Digest, size: u64) -> Result<BlobWriter, StoreError> {
        BlobWriter::open(self, digest, size).await
    }
}

/// Where a download puts a blob's bytes, in order: a blob file of a store, or the blob's place
/// inside an archive. The sink hashes what it is given; whoever opened it checks the digest
/// when the bytes are all there.
pub trait BlobSink: Send {
    /// Bytes already in place: where a resumed download starts.
    fn offset(&self) -> u64;
    /// Appends bytes; more than the blob's size is an error.
    fn write(&mut self, bytes: &[u8]) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Forgets everything written (the server ignored a `Range` request).
    fn restart(&mut self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl BlobSink for BlobWriter {
    fn offset(&self) -> u64 {
        BlobWriter::offset(self)
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        BlobWriter::write(self, bytes).await
    }

    async fn restart(&mut self) -> Result<(), StoreError> {
        BlobWriter::restart(self).await
    }
}

/// Writes one blob: hashes every byte on the way to disk and publishes the file under its
/// digest only when [`BlobWriter::commit`] has checked size and digest.
pub struct BlobWriter {
    digest: Digest,
    size: u64,
    partial: PathBuf,
    target: PathBuf,
    file: BufWriter<tokio::fs::File>,
    hasher: Sha256Hasher,
    written: u64,
}

impl BlobWriter {
    async fn open(store: &BlobStore, digest: &Digest, size: u64) -> Result<Self, StoreError> {
        let dir = store.partial_dir();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(StoreError::io("cannot create", &dir))?;
        let partial = dir.join(digest.hex());
        let mut file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&partial)
            .await
            .map_err(StoreError::io("cannot open", &partial))?;
        let on_disk = file
            .metadata()
            .await
            .map_err(StoreError::io("cannot read", &partial))?
            .len();
        let mut hasher = Sha256Hasher::new();
        let mut written = 0;
        if on_disk > size {
            // Longer than the blob can be: not a prefix of it. Start over.
            file.set_len(0)
                .await
                .map_err(StoreError::io("cannot truncate", &partial))?;
        } else if on_disk > 0 {
            // Re-hash what an earlier attempt left, so the final digest covers every byte.
            written = read_chunks(&mut file, &partial, async |chunk: &[u8]| {
                hasher.update(chunk);
                Ok(())
            })
            .await?;
        }
        file.seek(io::SeekFrom::Start(written))
            .await
            .map_err(StoreError::io("cannot seek", &partial))?;
        Ok(BlobWriter {
            digest: digest.clone(),
            size,
            partial,
            target: store.path(digest),
            file: BufWriter::with_capacity(IO_BUFFER, file),
            hasher,
            written,
        })
    }

    /// Bytes already in place: where a resumed download starts.
    pub fn offset(&self) -> u64 {
        self.written
    }

    /// The blob being written.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Appends bytes. More bytes than the descriptor's size is an error at once: a source that
    /// sends an endless body must not fill the disk.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let after = self.written + bytes.len() as u64;
        if after > self.size {
            return Err(StoreError::SizeMismatch {
                digest: self.digest.clone(),
                expected: self.size,
                actual: after,
            });
        }
        self.file
            .write_all(bytes)
            .await
            .map_err(StoreError::io("cannot write", &self.partial))?;
        self.hasher.update(bytes);
        self.written = after;
        Ok(())
    }

    /// Drops everything written so far (the server ignored a `Range` request and is sending the
    /// whole blob again).
    pub async fn restart(&mut self) -> Result<(), StoreError> {
        self.file
            .flush()
            .await
            .map_err(StoreError::io("cannot write", &self.partial))?;
        let file = self.file.get_mut();
        file.set_len(0)
            .await
            .map_err(StoreError::io("cannot truncate", &self.partial))?;
        file.seek(io::SeekFrom::Start(0))
            .await
            .map_err(StoreError::io("cannot seek", &self.partial))?;
        self.hasher = Sha256Hasher::new();
        self.written = 0;
        Ok(())
    }

    /// Flushes buffered bytes and syncs them, keeping the partial file for a later resume.
    pub async fn suspend(mut self) -> Result<(), StoreError> {
        self.file
            .flush()
            .await
            .map_err(StoreError::io("cannot write", &self.partial))?;
        self.file
            .get_ref()
            .sync_data()
            .await
            .map_err(StoreError::io("cannot sync", &self.partial))
    }

    /// Fills the blob from a local file (another layout's copy of it) and commits it, so the
    /// bytes are verified on the way in like any download.
    pub async fn copy_file(
        mut self,
        path: &Path,
        progress: impl Fn(u64),
    ) -> Result<PathBuf, StoreError> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(StoreError::io("cannot open", path))?;
        self.restart().await?;
        read_chunks(&mut file, path, async |chunk: &[u8]| {
            self.write(chunk).await?;
            progress(chunk.len() as u64);
            Ok(())
        })
        .await?;
        self.commit().await
    }

    /// Checks size and digest, then fsyncs and renames the blob to its final name. A blob whose
    /// bytes are wrong is deleted, never published.
    pub async fn commit(mut self) -> Result<PathBuf, StoreError> {
        self.file
            .flush()
            .await
            .map_err(StoreError::io("cannot write", &self.partial))?;
        if self.written != self.size {
            return Err(StoreError::SizeMismatch {
                digest: self.digest,
                expected: self.size,
                actual: self.written,
            });
        }
        let actual = self.hasher.finish();
        if actual != self.digest {
            let _ = tokio::fs::remove_file(&self.partial).await;
            return Err(StoreError::DigestMismatch {
                expected: self.digest,
                actual,
            });
        }
        self.file
            .get_ref()
            .sync_all()
            .await
            .map_err(StoreError::io("cannot sync", &self.partial))?;
        publish(&self.partial, &self.target).await?;
        Ok(self.target)
    }
}

/// Reads a file from its current position to the end in [`IO_BUFFER`] pieces, handing each to
/// `each`; returns the number of bytes read.
async fn read_chunks(
    file: &mut tokio::fs::File,
    path: &Path,
    mut each: impl AsyncFnMut(&[u8]) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut buf = vec![0u8; IO_BUFFER];
    let mut total = 0;
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(StoreError::io("cannot read", path))?;
        if n == 0 {
            return Ok(total);
        }
        each(&buf[..n]).await?;
        total += n as u64;
    }
}

/// Renames a finished file into place and syncs the directory, so the name survives a crash.
async fn publish(from: &Path, to: &Path) -> Result<(), StoreError> {
    let dir = to.parent().expect("blob paths have a parent");
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(StoreError::io("cannot create", dir))?;
    tokio::fs::rename(from, to)
        .await
        .map_err(StoreError::io("cannot rename into", to))?;
    sync_dir(dir).await
}

async fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let handle = tokio::fs::File::open(dir)
        .await
        .map_err(StoreError::io("cannot open", dir))?;
    handle
        .sync_all()
        .await
        .map_err(StoreError::io("cannot sync", dir))
}

/// Replaces `path` with `bytes` atomically: temp file in the same directory, fsync, rename,
/// fsync of the directory. Readers see the old content or the new, never a mix.
pub async fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let path = path.to_path_buf();
    let bytes = bytes.to_vec();
    tokio::task::spawn_blocking(move || write_atomic_blocking(&path, &bytes))
        .await
        .expect("atomic write task does not panic")
}

/// [`write_atomic`] for code that already runs on a blocking thread.
pub fn write_atomic_blocking(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// Like [`write_atomic_blocking`], the bytes written by `write` as they come, through a
/// buffer: a large file (a pull's state) is never held in memory whole.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn io::Write) -> io::Result<()>,
) -> Result<(), StoreError> {
    // A bare file name (`--receipt r.json`) lies in the current directory.
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(StoreError::io("cannot create", dir))?;
    // Readable by others (umask permitting), like any file a tool writes: a registry's service
    // account or a colleague must be able to read a layout or a bundle.
    let tmp = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .prefix(".ferry-tmp-")
        .tempfile_in(dir)
        .map_err(StoreError::io("cannot create a file in", dir))?;
    let tmp_path = tmp.path().to_path_buf();
    let mut buffered = std::io::BufWriter::with_capacity(1 << 16, tmp);
    let tmp = write(&mut buffered)
        .and_then(|_| buffered.into_inner().map_err(|e| e.into_error()))
        .and_then(|tmp| tmp.as_file().sync_all().map(|_| tmp))
        .map_err(StoreError::io("cannot write", &tmp_path))?;
    tmp.persist(path)
        .map_err(|e| StoreError::io("cannot rename into", path)(e.error))?;
    fsync_dir(dir).map_err(StoreError::io("cannot sync", dir))
}

/// Makes a directory's entries (new names, renames) durable.
pub fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Vec<u8> {
        (0..3_000_000u32).map(|i| (i % 251) as u8).collect()
    }

    #[tokio::test]
    async fn a_blob_is_published_only_when_its_digest_matches() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path());
        let data = payload();
        let digest = Digest::of(&data);

        let mut writer = store.writer(&digest, data.len() as u64).await.unwrap();
        writer.write(&data).await.unwrap();
        let path = writer.commit().await.unwrap();
        assert_eq!(std::fs::read(path).unwrap(), data);
        assert!(store.contains(&digest, data.len() as u64).await);

        let mut wrong = data.clone();
        wrong[1000] ^= 1;
        let other = Digest::of(b"something else");
        let mut writer = store.writer(&other, wrong.len() as u64).await.unwrap();
        writer.write(&wrong).await.unwrap();
        match writer.commit().await {
            Err(StoreError::DigestMismatch { expected, actual }) => {
                assert_eq!(expected, other);
                assert_eq!(actual, Digest::of(&wrong));
            }
            other => panic!("expected a digest mismatch, got {other:?}"),
        }
        assert!(!store.path(&other).exists());
        assert!(!store.partial_dir().join(other.hex()).exists());
    }

    #[tokio::test]
    async fn an_interrupted_blob_resumes_from_its_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path());
        let data = payload();
        let digest = Digest::of(&data);
        let size = data.len() as u64;

        let mut first = store.writer(&digest, size).await.unwrap();
        first.write(&data[..1_234_567]).await.unwrap();
        first.suspend().await.unwrap();
        assert!(!store.path(&digest).exists());

        let mut second = store.writer(&digest, size).await.unwrap();
        assert_eq!(second.offset(), 1_234_567);
        second.write(&data[1_234_567..]).await.unwrap();
        second.commit().await.unwrap();
        assert_eq!(std::fs::read(store.path(&digest)).unwrap(), data);
    }

    #[tokio::test]
    async fn too_many_bytes_are_refused_before_they_reach_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path());
        let digest = Digest::of(b"abc");
        let mut writer = store.writer(&digest, 3).await.unwrap();
        assert!(matches!(
            writer.write(b"abcd").await,
            Err(StoreError::SizeMismatch { actual: 4, .. })
        ));
        writer.write(b"abc").await.unwrap();
        writer.restart().await.unwrap();
        assert_eq!(writer.offset(), 0);
        writer.write(b"abc").await.unwrap();
        writer.commit().await.unwrap();
    }
}
