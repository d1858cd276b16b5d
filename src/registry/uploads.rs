//! Blob uploads: a small blob whole in the POST that opens its upload where the registry takes
//! that, one streamed PUT, or chunked PATCHes whose offsets ferry tracks itself
//! (registry 2.8 ignores `Content-Range`), PATCHes after a body is refused as too large, and
//! cross-repository mounts. Bodies stream from a [`BlobSource`] without ever holding a blob
//! whole.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::{Method, StatusCode};

use super::auth::Scope;
use super::blobs::ProgressFn;
use super::client::{RegistryClient, header};
use super::error::RegistryError;
use super::upload_body::{Verifier, source_error, with_body};
use crate::digest::Digest;
use crate::segment::BlobSource;

/// How blob bodies are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UploadMode {
    /// One PUT carrying the whole blob: fastest, and what every registry takes.
    #[default]
    Monolithic,
    /// PATCHes of at most this many bytes, for proxies that limit request bodies.
    Chunked(u64),
}

/// Blobs up to this size go whole in the POST that opens their upload (the spec's single-POST
/// upload), one request instead of two, until the registry shows it does not store them that
/// way (distribution 2.8 answers 202 and opens a session, which then takes the PUT). A body
/// this small is one a server that ignores it still reads and drops, keeping the connection.
const WHOLE_POST_MAX: u64 = 256 << 10;

/// First PATCH size after a registry refused a whole blob in one body (413).
const FIRST_PATCH: u64 = 16 << 20;
/// Smallest PATCH tried before giving up.
const SMALLEST_PATCH: u64 = 64 << 10;

/// The body size uploads to one registry use, learnt as they go and shared by every upload in
/// flight: one PUT per blob (or PATCHes of a size asked for) until a body is refused as too
/// large (413, as proxies with `client_max_body_size` answer), then PATCHes of 16 MiB, halving
/// on every refusal down to 64 KiB.
#[derive(Debug)]
pub struct BodySize {
    /// Current PATCH size; 0 = one PUT per blob.
    patch: AtomicU64,
    /// Set once a body was refused as too large.
    refused: AtomicBool,
    /// Cleared once the registry showed it does not store a blob sent whole in its POST.
    whole_posts: AtomicBool,
}

impl BodySize {
    /// Starts with `mode`.
    pub fn new(mode: UploadMode) -> Self {
        let patch = match mode {
            UploadMode::Monolithic => 0,
            UploadMode::Chunked(size) => size.max(1),
        };
        BodySize {
            patch: AtomicU64::new(patch),
            refused: AtomicBool::new(false),
            whole_posts: AtomicBool::new(patch == 0),
        }
    }

    /// True when a blob of `len` bytes goes whole in the POST that opens its upload.
    fn posts_whole(&self, len: u64) -> bool {
        len <= WHOLE_POST_MAX
            && self.whole_posts.load(Ordering::Relaxed)
            && self.patch_size().is_none()
    }

    /// The PATCH size in use now; `None` while blobs go in one PUT each.
    pub fn patch_size(&self) -> Option<u64> {
        let patch = self.patch.load(Ordering::Relaxed);
        (patch > 0).then_some(patch)
    }

    /// True when a registry (or a proxy before it) refused a body as too large.
    pub fn refused(&self) -> bool {
        self.refused.load(Ordering::Relaxed)
    }

    /// After a body of `mode` was refused as too large: false when there is nothing smaller to
    /// try, else true with smaller PATCHes in use.
    fn shrink_after(&self, mode: UploadMode) -> bool {
        let (current, smaller) = match mode {
            UploadMode::Monolithic => (0, FIRST_PATCH),
            UploadMode::Chunked(size) if size / 2 >= SMALLEST_PATCH => (size, size / 2),
            UploadMode::Chunked(_) => return false,
        };
        // Another upload may have shrunk it already; keep the smaller.
        let _ = self
            .patch
            .compare_exchange(current, smaller, Ordering::Relaxed, Ordering::Relaxed);
        self.refused.store(true, Ordering::Relaxed);
        true
    }

    fn mode(&self) -> UploadMode {
        self.patch_size()
            .map_or(UploadMode::Monolithic, UploadMode::Chunked)
    }
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
    /// it), in bodies of the size `bodies` says; a body refused as too large makes it and every
    /// later upload sharing `bodies` go in smaller PATCHes. A blob of at most 256 KiB goes
    /// whole in its POST while the registry stores blobs sent that way. `session` is an upload
    /// already opened (by a declined mount).
    pub async fn upload_blob(
        &self,
        repository: &str,
        digest: &Digest,
        source: &BlobSource,
        bodies: &BodySize,
        mut session: Option<reqwest::Url>,
        progress: &ProgressFn,
    ) -> Result<(), RegistryError> {
        if session.is_none() && bodies.posts_whole(source.len()) {
            let scope = Scope::Push(repository.to_string());
            let verifier = Arc::new(Verifier::new(digest, source.len()));
            match self
                .post_whole(repository, &scope, source, bodies, &verifier)
                .await?
            {
                Some(opened) => session = Some(opened),
                None => {
                    progress(source.len());
                    return Ok(());
                }
            }
        }
        loop {
            let mode = bodies.mode();
            let result = self
                .upload_as(repository, digest, source, mode, session.take(), progress)
                .await;
            match result {
                Err(RegistryError::Status { status: 413, .. }) if bodies.shrink_after(mode) => {
                    tracing::info!(
                        "{repository}: a body of that size was refused (413); sending PATCHes"
                    );
                }
                other => return other,
            }
        }
    }

    /// One upload in `mode`. Failed attempts start over in a fresh session: a half-sent body
    /// must not be appended to.
    async fn upload_as(
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

    /// Sends a small blob whole in the POST that opens its upload: `None` when the registry
    /// stored it (201), else the session to PUT it to. A registry that opens a session instead
    /// (202) or fails the request gets POST + PUT from then on, this upload included; only the
    /// local copy being unreadable or damaged ends it.
    async fn post_whole(
        &self,
        repository: &str,
        scope: &Scope,
        source: &BlobSource,
        bodies: &BodySize,
        verifier: &Arc<Verifier>,
    ) -> Result<Option<reqwest::Url>, RegistryError> {
        let digest = &verifier.expected;
        let mut url = self.url(&format!("{repository}/blobs/uploads/"));
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let len = source.len();
        let unreadable = Arc::new(Mutex::new(None));
        // Bytes are told once stored: a body the registry drops is sent again by the PUT.
        let silent: ProgressFn = Arc::new(|_| {});
        let response = self
            .send(scope, false, || {
                let request = self
                    .http()
                    .request(Method::POST, url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream");
                with_body(request, source, 0, len, &silent, &unreadable, verifier)
            })
            .await;
        if let Some(e) = unreadable.lock().expect("not poisoned").take() {
            return Err(source_error(source, e));
        }
        verifier.check(source)?;
        let answer = match response {
            Ok(r) if r.status() == StatusCode::CREATED => return Ok(None),
            Ok(r) if r.status() == StatusCode::ACCEPTED => self.location(&r, scope).map(Some),
            Ok(r) => Err(self
                .status_error(r, scope, &format!("upload of {digest} in one POST"))
                .await),
            Err(e) => Err(e),
        };
        bodies.whole_posts.store(false, Ordering::Relaxed);
        match answer {
            Ok(session) => {
                tracing::debug!(
                    "{repository}: blobs sent whole in a POST are not stored; PUT follows"
                );
                Ok(session)
            }
            Err(e) => {
                tracing::info!("{e}; uploading in POST + PUT from now on");
                self.start_upload(repository, scope).await.map(Some)
            }
        }
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
