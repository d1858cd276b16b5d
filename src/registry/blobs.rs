//! Blobs of a repository: whether one is there, one opened as a stream, and one downloaded
//! into a [`BlobSink`] that hashes on the way (resumed as [`super::download`] resumes), its
//! bytes refused when they do not match.

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};

use super::auth::Scope;
use super::client::RegistryClient;
use super::error::RegistryError;
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
        let digest = &descriptor.digest;
        let url = self.url(&format!("{repository}/blobs/{digest}"));
        let scope = Scope::Pull(repository.to_string());
        let what = format!("blob {digest}");
        self.download(&scope, &url, &what, descriptor.size, writer, progress)
            .await
            .map_err(|e| match e {
                RegistryError::Store(e) => self.blob_error(repository, e),
                other => other,
            })
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
