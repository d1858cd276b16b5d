//! Blob uploads: one streamed PUT, or chunked PATCHes whose offsets ferry tracks itself
//! (registry 2.8 ignores `Content-Range`), and cross-repository mounts. Bodies stream from a
//! [`BlobSource`] without ever holding a blob whole.

use std::io::Read;
use std::sync::{Arc, Mutex};

use reqwest::{Method, StatusCode};

use super::auth::Scope;
use super::blobs::ProgressFn;
use super::client::{RegistryClient, header};
use super::error::RegistryError;
use crate::digest::{Digest, Sha256Hasher};
use crate::segment::BlobSource;

/// Size of the reads that feed an upload body (one per upload in flight: 4 MiB at the default
/// `-j 8`, 32 MiB at `-j 64`).
const READ_BUFFER: usize = 512 << 10;

/// How blob bodies are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UploadMode {
    /// One PUT carrying the whole blob: fastest, and what every registry takes.
    #[default]
    Monolithic,
    /// PATCHes of at most this many bytes, for proxies that limit request bodies.
    Chunked(u64),
}

/// The answer to a mount request.
#[derive(Debug)]
pub enum Mount {
    /// The registry linked the blob; nothing to upload.
    Mounted,
    /// The registry declined and opened an upload session instead, to be used for the upload.
    Session(reqwest::Url),
}

impl RegistryClient {
    /// Asks the registry to link a blob from another repository on the same registry.
    pub async fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<Mount, RegistryError> {
        let scope = Scope::Mount {
            to: repository.to_string(),
            from: from.to_string(),
        };
        let mut url = self.url(&format!("{repository}/blobs/uploads/"));
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let response = self
            .send(&scope, true, || {
                self.http().request(Method::POST, url.clone())
            })
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(Mount::Mounted),
            StatusCode::ACCEPTED => Ok(Mount::Session(self.location(&response, &scope)?)),
            _ => Err(self
                .status_error(response, &scope, &format!("mount of {digest}"))
                .await),
        }
    }

    /// Uploads a blob from `source`, checking on the way that the bytes read hash to `digest`
    /// (a damaged local copy is named, and its upload abandoned before the registry could take
    /// it). `session` is an upload already opened (by a declined mount). Failed attempts start
    /// over in a fresh session: a half-sent body must not be appended to.
    pub async fn upload_blob(
        &self,
        repository: &str,
        digest: &Digest,
        source: &BlobSource,
        mode: UploadMode,
        mut session: Option<reqwest::Url>,
        progress: &ProgressFn,
    ) -> Result<(), RegistryError> {
        let scope = Scope::Push(repository.to_string());
        let attempts = self.retry_policy().attempts;
        let verifier = Arc::new(Verifier::new(digest, source.len()));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let location = match session.take() {
                Some(l) => l,
                None => self.start_upload(repository, &scope).await?,
            };
            let result = match mode {
                UploadMode::Monolithic => {
                    self.put_whole(&scope, location, source, progress, &verifier)
                        .await
                }
                UploadMode::Chunked(size) => {
                    self.patch_chunks(&scope, location, source, size.max(1), progress, &verifier)
                        .await
                }
            };
            match result {
                Err(e) if attempt < attempts && is_transient(&e) => {
                    tracing::warn!("{e}; uploading {digest} again (attempt {attempt})");
                    tokio::time::sleep(self.retry_policy().delay(attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn start_upload(
        &self,
        repository: &str,
        scope: &Scope,
    ) -> Result<reqwest::Url, RegistryError> {
        let url = self.url(&format!("{repository}/blobs/uploads/"));
        let response = self
            .send(scope, true, || {
                self.http().request(Method::POST, url.clone())
            })
            .await?;
        let response = self
            .expect(
                response,
                scope,
                "start of a blob upload",
                &[StatusCode::ACCEPTED],
            )
            .await?;
        self.location(&response, scope)
    }

    fn location(
        &self,
        response: &reqwest::Response,
        scope: &Scope,
    ) -> Result<reqwest::Url, RegistryError> {
        let protocol = |detail: String| RegistryError::Protocol {
            target: self.target(scope.repository()),
            detail,
        };
        let value = header(response, reqwest::header::LOCATION.as_str())
            .ok_or_else(|| protocol("upload answer without a Location header".into()))?;
        self.resolve(&value)
            .map_err(|e| protocol(format!("upload Location '{value}' is not a URL: {e}")))
    }

    async fn put_whole(
        &self,
        scope: &Scope,
        mut location: reqwest::Url,
        source: &BlobSource,
        progress: &ProgressFn,
        verifier: &Arc<Verifier>,
    ) -> Result<(), RegistryError> {
        let digest = &verifier.expected;
        location
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let len = source.len();
        let unreadable = Arc::new(Mutex::new(None));
        let response = self
            .send(scope, false, || {
                let request = self
                    .http()
                    .request(Method::PUT, location.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream");
                with_body(request, source, 0, len, progress, &unreadable, verifier)
            })
            .await;
        if let Some(e) = unreadable.lock().expect("not poisoned").take() {
            return Err(source_error(source, e));
        }
        verifier.check(source)?;
        let what = format!("upload of {digest}");
        self.expect(response?, scope, &what, &[StatusCode::CREATED])
            .await
            .map(drop)
    }

    async fn patch_chunks(
        &self,
        scope: &Scope,
        mut location: reqwest::Url,
        source: &BlobSource,
        chunk: u64,
        progress: &ProgressFn,
        verifier: &Arc<Verifier>,
    ) -> Result<(), RegistryError> {
        let digest = &verifier.expected;
        let len = source.len();
        let mut offset = 0u64;
        let mut failures = 0u32;
        while offset < len {
            let n = chunk.min(len - offset);
            let end = offset + n - 1;
            let unreadable = Arc::new(Mutex::new(None));
            let result = self
                .send(scope, false, || {
                    let request = self
                        .http()
                        .request(Method::PATCH, location.clone())
                        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                        .header("Content-Range", format!("{offset}-{end}"));
                    with_body(request, source, offset, n, progress, &unreadable, verifier)
                })
                .await;
            if let Some(e) = unreadable.lock().expect("not poisoned").take() {
                return Err(source_error(source, e));
            }
            verifier.check(source)?;
            let failed = match result {
                Ok(response) if response.status() == StatusCode::ACCEPTED => {
                    let next = self.location(&response, scope)?;
                    let stored = header(&response, "range").and_then(|r| range_end(&r));
                    if stored != Some(end) {
                        return Err(RegistryError::Protocol {
                            target: self.target(scope.repository()),
                            detail: format!(
                                "upload of {digest}: sent bytes {offset}-{end}, the registry holds up to {stored:?}"
                            ),
                        });
                    }
                    location = next;
                    offset = end + 1;
                    failures = 0;
                    continue;
                }
                Ok(response) => {
                    self.status_error(response, scope, &format!("upload of {digest}"))
                        .await
                }
                Err(e) => e,
            };
            failures += 1;
            if !is_transient(&failed) || failures >= self.retry_policy().attempts {
                return Err(failed);
            }
            tokio::time::sleep(self.retry_policy().delay(failures)).await;
            // Ask the session where it stands and go on from there.
            let (next, stored) = self.upload_status(scope, &location).await?;
            location = next;
            offset = stored;
        }
        if !verifier.followed_all() {
            // Parts were sent again after a failure, so the running hash lost its thread:
            // check the local copy in one more read before committing it.
            verifier.verify_whole(source).await?;
        }
        location
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let response = self
            .send(scope, true, || {
                self.http()
                    .request(Method::PUT, location.clone())
                    .header(reqwest::header::CONTENT_LENGTH, 0)
            })
            .await?;
        self.expect(
            response,
            scope,
            &format!("upload of {digest}"),
            &[StatusCode::CREATED],
        )
        .await
        .map(drop)
    }

    /// The newest location of an upload session and how many bytes it holds.
    async fn upload_status(
        &self,
        scope: &Scope,
        location: &reqwest::Url,
    ) -> Result<(reqwest::Url, u64), RegistryError> {
        let response = self
            .send(scope, true, || {
                self.http().request(Method::GET, location.clone())
            })
            .await?;
        let response = self
            .expect(response, scope, "upload status", &[StatusCode::NO_CONTENT])
            .await?;
        let next = self.location(&response, scope)?;
        // `Range: 0-0` is what 2.8 says for an empty session too; only a longer range means bytes.
        let stored = match header(&response, "range").and_then(|r| range_end(&r)) {
            Some(0) | None => 0,
            Some(end) => end + 1,
        };
        Ok((next, stored))
    }
}

/// Hashes a blob's bytes in order as upload bodies read them, so that a damaged local copy is
/// caught and named (the registry would only say that the digest is wrong).
struct Verifier {
    expected: Digest,
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
    fn new(expected: &Digest, len: u64) -> Self {
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
    fn followed_all(&self) -> bool {
        self.state.lock().expect("not poisoned").at == self.len
    }

    /// The damage found, as an error naming where the bytes came from.
    fn check(&self, source: &BlobSource) -> Result<(), RegistryError> {
        match self.state.lock().expect("not poisoned").mismatch.clone() {
            Some(actual) => Err(damaged(&self.expected, actual, source)),
            None => Ok(()),
        }
    }

    /// Reads the whole local copy once more and checks it.
    async fn verify_whole(&self, source: &BlobSource) -> Result<(), RegistryError> {
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
fn with_body(
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

fn source_error(source: &BlobSource, err: std::io::Error) -> RegistryError {
    let path = source
        .parts()
        .first()
        .map(|s| s.path.clone())
        .unwrap_or_default();
    RegistryError::Store(crate::store::StoreError::Io {
        action: "cannot read",
        path,
        source: err,
    })
}

fn is_transient(err: &RegistryError) -> bool {
    match err {
        RegistryError::Unreachable { .. } => true,
        RegistryError::Status { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
        _ => false,
    }
}

/// The last byte of `Range: 0-END`.
fn range_end(value: &str) -> Option<u64> {
    value
        .trim()
        .trim_start_matches("bytes=")
        .split('-')
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_registries_write_them() {
        assert_eq!(range_end("0-999"), Some(999));
        assert_eq!(range_end("bytes=0-5"), Some(5));
        assert_eq!(range_end("junk"), None);
    }
}
