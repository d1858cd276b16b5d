//! Blob downloads: streamed into a [`BlobWriter`] that hashes on the way, resumed with `Range`
//! after a dropped connection or a short body, and refused when the bytes do not match.

use std::time::Instant;

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};

use super::auth::Scope;
use super::client::{RegistryClient, header};
use super::error::{RegistryError, classify_transport};
use super::transport::MIN_BYTES_PER_STALL;
use crate::digest::Digest;
use crate::manifest::Descriptor;
use crate::store::{BlobSink, StoreError};

pub use crate::report::ProgressFn;

impl RegistryClient {
    /// True when the repository holds the blob (blobs are linked per repository).
    pub async fn blob_exists(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let scope = Scope::Pull(repository.to_string());
        let url = self.url(&format!("{repository}/blobs/{digest}"));
        let response = self
            .send(&scope, true, || {
                self.http().request(Method::HEAD, url.clone())
            })
            .await?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self
                .status_error(response, &scope, &format!("HEAD blob {digest}"))
                .await),
        }
    }

    /// Opens a blob as a byte stream, for reading a few files out of a layer without storing
    /// it: no resume and no digest check (the reader stops early, before the digest could be
    /// known). Whole blobs go through [`RegistryClient::download_blob`].
    pub async fn blob_stream(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<
        impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
        RegistryError,
    > {
        let scope = Scope::Pull(repository.to_string());
        let url = self.url(&format!("{repository}/blobs/{digest}"));
        let response = self
            .send(&scope, true, || {
                self.http().request(Method::GET, url.clone())
            })
            .await?;
        let response = self
            .expect(
                response,
                &scope,
                &format!("blob {digest}"),
                &[StatusCode::OK],
            )
            .await?;
        Ok(response
            .bytes_stream()
            .map(|r| r.map_err(std::io::Error::other)))
    }

    /// Downloads a blob into `writer` (which may already hold a prefix from an earlier attempt).
    /// A connection that drops mid-body is resumed from the last byte written. The caller checks
    /// the digest once this returns (mapping a mismatch with [`RegistryClient::blob_error`]).
    pub async fn download_blob(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        writer: &mut impl BlobSink,
        progress: &ProgressFn,
    ) -> Result<(), RegistryError> {
        let scope = Scope::Pull(repository.to_string());
        let target = self.target(Some(repository));
        let digest = &descriptor.digest;
        let url = self.url(&format!("{repository}/blobs/{digest}"));
        let what = format!("blob {digest}");
        let stall = self.stall_timeout();
        let mut failures = 0u32;
        // Progress is measured against the furthest byte ever reached: a server that ignores
        // Range and cuts the body at the same place every time makes none, and is given up on.
        let mut furthest = writer.offset();
        progress(writer.offset());
        while writer.offset() < descriptor.size {
            let offset = writer.offset();
            let response = self
                .send(&scope, true, || {
                    let request = self.http().request(Method::GET, url.clone());
                    if offset > 0 {
                        request.header(reqwest::header::RANGE, format!("bytes={offset}-"))
                    } else {
                        request
                    }
                })
                .await?;
            match response.status() {
                StatusCode::OK if offset > 0 => {
                    // The server ignored the Range and sends everything again.
                    writer.restart().await?;
                }
                StatusCode::OK => {}
                StatusCode::PARTIAL_CONTENT => {
                    let start = header(&response, "content-range").and_then(|r| range_start(&r));
                    if start != Some(offset) {
                        return Err(RegistryError::Protocol {
                            target,
                            detail: format!(
                                "asked for {what} from byte {offset}, got Content-Range {:?}",
                                header(&response, "content-range")
                            ),
                        });
                    }
                }
                _ => return Err(self.status_error(response, &scope, &what).await),
            }
            let mut stream = response.bytes_stream();
            let mut broken = None;
            // A body that trickles is as stuck as one that stops: it must move at least
            // MIN_BYTES_PER_STALL per stall timeout.
            let mut window = (Instant::now(), 0u64);
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(bytes) => {
                        writer
                            .write(&bytes)
                            .await
                            .map_err(|e| blob_error(&target, e))?;
                        progress(bytes.len() as u64);
                        window.1 += bytes.len() as u64;
                        if window.0.elapsed() >= stall {
                            if window.1 < MIN_BYTES_PER_STALL {
                                broken = Some(RegistryError::Stalled {
                                    target: target.clone(),
                                    what: what.clone(),
                                    seconds: stall.as_secs(),
                                });
                                break;
                            }
                            window = (Instant::now(), 0);
                        }
                    }
                    Err(e) => {
                        broken = Some(if e.is_timeout() {
                            RegistryError::Stalled {
                                target: target.clone(),
                                what: what.clone(),
                                seconds: stall.as_secs(),
                            }
                        } else {
                            classify_transport(target.clone(), &e)
                        });
                        break;
                    }
                }
            }
            if writer.offset() < descriptor.size {
                if writer.offset() > furthest {
                    furthest = writer.offset();
                    failures = 0;
                }
                failures += 1;
                let policy = self.retry_policy();
                if failures >= policy.attempts {
                    if let Some(stalled @ RegistryError::Stalled { .. }) = broken {
                        return Err(stalled);
                    }
                    let last = broken.map(|e| format!(" (last: {e})")).unwrap_or_default();
                    return Err(RegistryError::Protocol {
                        target,
                        detail: format!(
                            "{what}: the body keeps ending at byte {} of {}, {} tries without \
                             getting further{last}",
                            writer.offset(),
                            descriptor.size,
                            policy.attempts
                        ),
                    });
                }
                tracing::warn!(
                    "{target}: {what} interrupted at byte {} of {}; resuming",
                    writer.offset(),
                    descriptor.size
                );
                if failures > 1 {
                    tokio::time::sleep(policy.delay(failures - 1)).await;
                }
            }
        }
        Ok(())
    }

    /// The error for a blob of `repository` whose bytes did not check out: a digest or size
    /// mismatch names the registry that sent them.
    pub fn blob_error(&self, repository: &str, err: StoreError) -> RegistryError {
        blob_error(&self.target(Some(repository)), err)
    }
}

fn blob_error(target: &super::error::Target, err: StoreError) -> RegistryError {
    match err {
        StoreError::DigestMismatch { expected, actual } => RegistryError::DigestMismatch {
            target: target.clone(),
            expected,
            actual,
        },
        StoreError::SizeMismatch {
            digest,
            expected,
            actual,
        } => RegistryError::Protocol {
            target: target.clone(),
            detail: format!(
                "blob {digest} should be {expected} bytes but the registry sent {actual} or more"
            ),
        },
        other => RegistryError::Store(other),
    }
}

/// The first byte of `Content-Range: bytes START-END/TOTAL`.
fn range_start(value: &str) -> Option<u64> {
    value
        .trim()
        .strip_prefix("bytes ")?
        .split('-')
        .next()?
        .parse()
        .ok()
}
