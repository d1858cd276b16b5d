//! The OCI 1.1 referrers API: `GET /v2/<name>/referrers/<digest>` lists the manifests whose
//! `subject` is that digest. Registries without it (distribution 2.8) answer 404; then the
//! caller falls back to the referrers tag schema.

use reqwest::StatusCode;

use super::auth::Scope;
use super::client::RegistryClient;
use super::error::RegistryError;
use super::pages::Listing;
use crate::digest::Digest;
use crate::manifest::{Descriptor, MANIFEST_LIMIT, OCI_INDEX};

impl RegistryClient {
    /// What refers to `digest` in `repository`, by the referrers API; `None` when the registry
    /// has no such API (404, 405 or 400 for the path).
    pub async fn referrers(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<Vec<Descriptor>>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            manifests: Vec<Descriptor>,
        }
        let scope = Scope::Pull(repository.to_string());
        let target = self.target(Some(repository));
        let what = format!("the referrers of {digest}");
        let listing = Listing {
            what: &what,
            accept: Some(OCI_INDEX),
            max_pages: 100,
            page_limit: MANIFEST_LIMIT as usize,
            // What is listed becomes one index in the bundle, which readers take up to this.
            total_limit: MANIFEST_LIMIT as usize,
            absent: &[
                StatusCode::NOT_FOUND,
                StatusCode::METHOD_NOT_ALLOWED,
                StatusCode::BAD_REQUEST,
            ],
        };
        let mut found = Vec::new();
        let answered = self
            .get_pages(
                &scope,
                &format!("{repository}/referrers/{digest}"),
                &listing,
                |body| {
                    let page: Page =
                        serde_json::from_slice(body).map_err(|e| RegistryError::Protocol {
                            target: target.clone(),
                            detail: format!("{what} is not an image index: {e}"),
                        })?;
                    found.extend(page.manifests);
                    Ok(())
                },
            )
            .await?;
        Ok(answered.then_some(found))
    }
}
