//! Manifests on a registry: GET and HEAD with every manifest media type accepted, PUT of the
//! exact bytes, and digest checks against the reference and `Docker-Content-Digest`.

use reqwest::{Method, StatusCode};

use super::auth::Scope;
use super::body::read_limited;
use super::client::{RegistryClient, header};
use super::error::RegistryError;
use crate::digest::Digest;
use crate::manifest::{Descriptor, MANIFEST_ACCEPT, MANIFEST_LIMIT, Manifest, ManifestError};

impl RegistryClient {
    /// Fetches a manifest or index by tag or digest, exactly as stored.
    pub async fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Manifest, RegistryError> {
        let scope = Scope::Pull(repository.to_string());
        let url = self.url(&format!("{repository}/manifests/{reference}"));
        let response = self
            .send(&scope, true, || {
                self.http()
                    .request(Method::GET, url.clone())
                    .header(reqwest::header::ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        let what = format!("manifest {reference}");
        let response = self
            .expect(response, &scope, &what, &[StatusCode::OK])
            .await?;
        let target = self.target(Some(repository));
        let content_type = header(&response, reqwest::header::CONTENT_TYPE.as_str());
        let announced = header(&response, "docker-content-digest");
        let bytes = read_limited(
            response,
            MANIFEST_LIMIT as usize,
            &target,
            &format!("{what} (the distribution spec allows manifests of 4 MiB)"),
        )
        .await?;
        let manifest = Manifest::from_bytes(bytes, content_type.as_deref())
            .map_err(|e| manifest_error(self, repository, e))?;
        let expected = reference
            .parse::<Digest>()
            .ok()
            .or_else(|| announced.and_then(|d| d.parse().ok()));
        if let Some(expected) = expected
            && expected != manifest.digest
        {
            return Err(RegistryError::DigestMismatch {
                target,
                expected,
                actual: manifest.digest,
            });
        }
        Ok(manifest)
    }

    /// Looks a manifest up without downloading it: `None` when it does not exist.
    pub async fn head_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Descriptor>, RegistryError> {
        let scope = Scope::Pull(repository.to_string());
        let url = self.url(&format!("{repository}/manifests/{reference}"));
        let response = self
            .send(&scope, true, || {
                self.http()
                    .request(Method::HEAD, url.clone())
                    .header(reqwest::header::ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let what = format!("manifest {reference}");
        let response = self
            .expect(response, &scope, &what, &[StatusCode::OK])
            .await?;
        let digest = header(&response, "docker-content-digest").and_then(|d| d.parse().ok());
        let media_type = header(&response, reqwest::header::CONTENT_TYPE.as_str());
        let size = header(&response, reqwest::header::CONTENT_LENGTH.as_str())
            .and_then(|s| s.parse::<u64>().ok());
        match (digest, media_type, size) {
            (Some(d), Some(m), Some(s)) => Ok(Some(Descriptor::new(m, d, s))),
            _ => {
                // Some registries omit headers on HEAD; a GET tells the truth.
                let m = self.get_manifest(repository, reference).await?;
                Ok(Some(m.descriptor()))
            }
        }
    }

    /// Stores a manifest under a tag or its digest. The registry must agree on the digest;
    /// `true` when it said which digest it stored (`Docker-Content-Digest`), which then is the
    /// manifest's: the answer is a read-back.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<bool, RegistryError> {
        let scope = Scope::Push(repository.to_string());
        let url = self.url(&format!("{repository}/manifests/{reference}"));
        let response = self
            .send(&scope, true, || {
                self.http()
                    .request(Method::PUT, url.clone())
                    .header(reqwest::header::CONTENT_TYPE, manifest.media_type.as_str())
                    .body(manifest.bytes.clone())
            })
            .await?;
        let what = format!("PUT manifest {reference}");
        let response = self
            .expect(
                response,
                &scope,
                &what,
                &[StatusCode::CREATED, StatusCode::OK],
            )
            .await?;
        let stored =
            header(&response, "docker-content-digest").and_then(|d| d.parse::<Digest>().ok());
        if let Some(stored) = &stored
            && *stored != manifest.digest
        {
            return Err(RegistryError::DigestMismatch {
                target: self.target(Some(repository)),
                expected: manifest.digest.clone(),
                actual: stored.clone(),
            });
        }
        Ok(stored.is_some())
    }
}

fn manifest_error(client: &RegistryClient, repository: &str, err: ManifestError) -> RegistryError {
    RegistryError::Protocol {
        target: client.target(Some(repository)),
        detail: err.to_string(),
    }
}
