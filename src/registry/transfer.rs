//! The transfer engine `push` and `copy` share: a blob reaches a repository by being there
//! already (HEAD), by a mount from a repository known to hold it, or by an upload (one PUT, or
//! PATCHes once a body is refused as too large); manifests follow their blobs, children before
//! parents, each written only when the repository lacks it.

use super::blobs::ProgressFn;
use super::client::RegistryClient;
use super::error::RegistryError;
use super::uploads::{BodySize, Mount, UploadMode};
use crate::digest::Digest;
use crate::manifest::Manifest;
use crate::segment::BlobSource;

/// How a blob came to be in a repository (or, asking only, would).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// The repository had it.
    Present,
    /// The registry linked it from another repository.
    Mounted,
    /// Its bytes were sent.
    Uploaded,
}

/// Why a blob could not be placed: the registry's answer, or the caller's source of its bytes.
#[derive(Debug)]
pub enum PlaceError<E> {
    /// The registry refused or failed.
    Registry(RegistryError),
    /// The bytes could not be had.
    Source(E),
}

impl<E> PlaceError<E> {
    /// The caller's own error either way, the registry's answer made one by `registry`.
    pub fn unify(self, registry: impl FnOnce(RegistryError) -> E) -> E {
        match self {
            PlaceError::Registry(e) => registry(e),
            PlaceError::Source(e) => e,
        }
    }
}

/// Writes blobs and manifests to one registry, with one body size learnt across all uploads.
pub struct Transfer {
    client: RegistryClient,
    bodies: BodySize,
    progress: ProgressFn,
    asking_only: bool,
}

impl Transfer {
    /// Writes through `client`, uploads starting in `mode`, every byte sent told to `progress`.
    pub fn new(client: RegistryClient, mode: UploadMode, progress: ProgressFn) -> Self {
        Transfer {
            client,
            bodies: BodySize::new(mode),
            progress,
            asking_only: false,
        }
    }

    /// The same, but only asking (HEAD) when `asking_only`: [`Transfer::place_blob`] then says
    /// what it would do and writes nothing (a dry run).
    pub fn asking_only(self, asking_only: bool) -> Self {
        Transfer {
            asking_only,
            ..self
        }
    }

    /// The client, for what is not a transfer (tags, reading back).
    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    /// The PATCH size uploads ended with; `None` when every blob went in one PUT.
    pub fn patch_size(&self) -> Option<u64> {
        self.bodies.patch_size()
    }

    /// True when a registry (or a proxy before it) refused a body as too large.
    pub fn body_refused(&self) -> bool {
        self.bodies.refused()
    }

    /// Makes `repository` hold the blob `digest`: nothing when it has it, a mount from
    /// `mount_from` (a repository of this registry known to hold it) when the registry agrees,
    /// else an upload of the bytes `source` gives (asked only then: it may fetch them first).
    pub async fn place_blob<E>(
        &self,
        repository: &str,
        digest: &Digest,
        mount_from: Option<&str>,
        source: impl AsyncFnOnce() -> Result<BlobSource, E>,
    ) -> Result<Placed, PlaceError<E>> {
        let client = &self.client;
        if client
            .blob_exists(repository, digest)
            .await
            .map_err(PlaceError::Registry)?
        {
            return Ok(Placed::Present);
        }
        if self.asking_only {
            return Ok(match mount_from {
                Some(_) => Placed::Mounted,
                None => Placed::Uploaded,
            });
        }
        let mut session = None;
        if let Some(from) = mount_from {
            match client
                .mount_blob(repository, digest, from)
                .await
                .map_err(PlaceError::Registry)?
            {
                Mount::Mounted => return Ok(Placed::Mounted),
                // Declined: the session it opened carries the upload.
                Mount::Session(url) => session = Some(url),
            }
        }
        let source = source().await.map_err(PlaceError::Source)?;
        client
            .upload_blob(
                repository,
                digest,
                &source,
                &self.bodies,
                session,
                &self.progress,
            )
            .await
            .map_err(PlaceError::Registry)?;
        Ok(Placed::Uploaded)
    }

    /// Writes `manifests` to `repository` in the order given (children before parents), each
    /// by digest; returns how many were written.
    pub async fn write_manifests(
        &self,
        repository: &str,
        manifests: impl IntoIterator<Item = &Manifest>,
    ) -> Result<usize, RegistryError> {
        // Put without asking first: a PUT of a manifest the registry has is as cheap as a HEAD
        // and changes nothing, and on a push most are missing (their tags were asked already).
        let mut written = 0;
        for manifest in manifests {
            let digest = manifest.digest.to_string();
            self.client
                .put_manifest(repository, &digest, manifest)
                .await?;
            written += 1;
        }
        Ok(written)
    }
}
