//! Upload bodies: a blob's bytes streamed from a [`BlobSource`] in pieces read on blocking
//! threads, hashed in order on the way, so that a damaged local copy is caught and named
//! instead of being sent.

use std::io::Read;
use std::sync::{Arc, Mutex};

use super::blobs::ProgressFn;
use super::error::RegistryError;
use crate::digest::{Digest, Sha256Hasher};
use crate::segment::BlobSource;

/// Size of the reads that feed an upload body (one per upload in flight: 4 MiB at the default
/// `-j 8`, 32 MiB at `-j 64`).
const READ_BUFFER: usize = 512 << 10;

/// Hashes a blob's bytes in order as upload bodies read them, so that a damaged local copy is
/// caught and named (the registry would only say that the digest is wrong).
pub(super) struct Verifier {
    /// The digest the bytes must hash to.
    pub(super) expected: Digest,
    len: u64,
    state: Mutex<VerifyState>,
}

struct VerifyState {
    hasher: Sha256Hasher,
    /// Bytes hashed so far, from the start.
    at: u64,
    /// Set when the bytes did not hash to the digest.
    mismatch: Option<Digest>,
}

impl Verifier {
    /// A verifier of `len` bytes that must hash to `expected`.
    pub(super) fn new(expected: &Digest, len: u64) -> Self {
        Verifier {
            expected: expected.clone(),
            len,
            state: Mutex::new(VerifyState {
                hasher: Sha256Hasher::new(),
                at: 0,
                mismatch: None,
            }),
        }
    }

    /// Takes bytes read at `offset`. A body starting over from 0 starts the hash over; a part
    /// sent again after a failure is not followed. Fails on the last byte when the hash is not
    /// the digest, so that the body ends in an error instead of completing.
    fn feed(&self, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
        let mut state = self.state.lock().expect("not poisoned");
        if offset == 0 && state.at != 0 {
            state.hasher = Sha256Hasher::new();
            state.at = 0;
        }
        if offset != state.at || state.at >= self.len {
            return Ok(());
        }
        state.hasher.update(bytes);
        state.at += bytes.len() as u64;
        if state.at == self.len {
            let actual = std::mem::take(&mut state.hasher).finish();
            if actual != self.expected {
                state.mismatch = Some(actual);
                return Err(std::io::Error::other(
                    "the local copy does not match its digest",
                ));
            }
        }
        Ok(())
    }

    /// True when every byte went through the running hash in order.
    pub(super) fn followed_all(&self) -> bool {
        self.state.lock().expect("not poisoned").at == self.len
    }

    /// The damage found, as an error naming where the bytes came from.
    pub(super) fn check(&self, source: &BlobSource) -> Result<(), RegistryError> {
        match self.state.lock().expect("not poisoned").mismatch.clone() {
            Some(actual) => Err(damaged(&self.expected, actual, source)),
            None => Ok(()),
        }
    }

    /// Reads the whole local copy once more and checks it.
    pub(super) async fn verify_whole(&self, source: &BlobSource) -> Result<(), RegistryError> {
        let reader = source.reader();
        let hashed =
            tokio::task::spawn_blocking(move || crate::digest::hash_reader(reader, false, &|_| {}))
                .await
                .expect("hashing does not panic")
                .map_err(|e| source_error(source, e))?;
        let actual: Digest = format!("sha256:{}", hashed.sha256)
            .parse()
            .expect("a sha256 in hex");
        if actual != self.expected {
            return Err(damaged(&self.expected, actual, source));
        }
        Ok(())
    }
}

fn damaged(expected: &Digest, actual: Digest, source: &BlobSource) -> RegistryError {
    RegistryError::Damaged {
        digest: expected.clone(),
        actual,
        files: source
            .parts()
            .iter()
            .map(|p| p.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Attaches `len` bytes of `source` from `skip` as a streamed body with its length, each piece
/// fed to `verifier`. Reading and hashing run on blocking threads, never on the async workers.
/// A file that cannot be read is parked in `unreadable` for the caller to report instead of the
/// (aborted) request's answer.
pub(super) fn with_body(
    request: reqwest::RequestBuilder,
    source: &BlobSource,
    skip: u64,
    len: u64,
    progress: &ProgressFn,
    unreadable: &Arc<Mutex<Option<std::io::Error>>>,
    verifier: &Arc<Verifier>,
) -> reqwest::RequestBuilder {
    // Missing files are found before the request starts, not halfway through its body.
    let part = source.slice(skip, len);
    if let Some(e) = part
        .parts()
        .iter()
        .find_map(|s| std::fs::metadata(&s.path).err())
    {
        *unreadable.lock().expect("not poisoned") = Some(e);
        return request;
    }
    struct Body {
        reader: crate::segment::SegmentReader,
        offset: u64,
        left: u64,
        verifier: Arc<Verifier>,
    }
    let start = Body {
        reader: part.reader(),
        offset: skip,
        left: len,
        verifier: verifier.clone(),
    };
    let progress = progress.clone();
    let unreadable = unreadable.clone();
    let stream = futures_util::stream::unfold(start, move |mut body| {
        let progress = progress.clone();
        let unreadable = unreadable.clone();
        async move {
            if body.left == 0 {
                return None;
            }
            let n = body.left.min(READ_BUFFER as u64) as usize;
            let read = tokio::task::spawn_blocking(move || {
                let mut buffer = vec![0u8; n];
                let result = body
                    .reader
                    .read_exact(&mut buffer)
                    .map_err(|e| (true, e))
                    .and_then(|()| {
                        body.verifier
                            .feed(body.offset, &buffer)
                            .map_err(|e| (false, e))
                    });
                (body, buffer, result)
            })
            .await
            .expect("a read task does not panic");
            let (mut body, buffer, result) = read;
            match result {
                Ok(()) => {
                    body.offset += n as u64;
                    body.left -= n as u64;
                    progress(n as u64);
                    Some((Ok(bytes::Bytes::from(buffer)), body))
                }
                Err((is_read, e)) => {
                    let abort = std::io::Error::new(e.kind(), e.to_string());
                    if is_read {
                        *unreadable.lock().expect("not poisoned") = Some(e);
                    }
                    body.left = 0;
                    Some((Err(abort), body))
                }
            }
        }
    });
    request
        .header(reqwest::header::CONTENT_LENGTH, len)
        .body(reqwest::Body::wrap_stream(stream))
}

/// A local file that could not be read, named.
pub(super) fn source_error(source: &BlobSource, err: std::io::Error) -> RegistryError {
    let path = source
        .parts()
        .first()
        .map(|s| s.path.to_path_buf())
        .unwrap_or_default();
    RegistryError::Store(crate::store::StoreError::Io(crate::file_error::FileError {
        action: "cannot read",
        path,
        source: err,
    }))
}
